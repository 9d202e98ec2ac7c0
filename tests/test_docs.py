"""The documentation site's generated pages (the site itself is built by .ci/run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import generated_pages  # noqa: E402


def test_benchmark_page_shows_every_record_and_its_numbers():
    results = ROOT / "benchmarks" / "results"
    page = generated_pages.benchmark_page(results)
    records = sorted(results.glob("*.json"))
    assert records
    for path in records:
        assert f"\n## {path.name}\n" in page
    models = json.loads((results / "converter_digits.json").read_text())["models"]
    row = " | ".join(str(m["parameters"]) for m in models.values())
    assert f"| parameters | {row} |" in page


def test_records_render_as_tables(tmp_path):
    record = {
        "benchmark": "toy",
        "threads": 2,
        "rows": [{"n": 1, "time": {"ours": 0.123456, "peer": 2.0}}, {"n": 2, "time": {"ours": 1}}],
        "models": {"a": {"acc": 0.5}, "b": {"acc": 0.25, "note": "x|y"}},
    }
    (tmp_path / "toy.json").write_text(json.dumps(record))
    page = generated_pages.benchmark_page(tmp_path)
    assert "| threads | 2 |" in page
    assert "|  | n | time.ours | time.peer |" in page
    assert "| 1 | 1 | 0.1235 | 2 |" in page and "| 2 | 2 | 1 |  |" in page
    assert "|  | acc | note |" in page and "| b | 0.25 | x\\|y |" in page
