"""The README's measured-comparison table is generated from the benchmark records
(``benchmarks/readme_table.py``); a hand-edited or stale table fails here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "readme_table.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_readme_table_is_up_to_date():
    result = _run("--check")
    assert result.returncode == 0, result.stderr


def _module():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import readme_table
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return readme_table


def test_hand_edit_and_unknown_records_are_detected(tmp_path):
    readme = tmp_path / "README.md"
    results = tmp_path / "results"
    results.mkdir()
    for name in ("converter_digits.json", "datasets_cpu.json"):
        (results / name).write_text((ROOT / "benchmarks" / "results" / name).read_text())
    (results / "zz_new_kind.json").write_text(json.dumps({"benchmark": "something new"}))
    readme.write_text("# title\n\n<!-- results:begin -->\n| typed | by | hand | x |\n"
                      "<!-- results:end -->\n\nafter\n")
    args = ("--readme", str(readme), "--results", str(results))
    assert _run("--check", *args).returncode == 1
    assert _run(*args).returncode == 0
    text = readme.read_text()
    assert "typed" not in text and text.endswith("<!-- results:end -->\n\nafter\n")
    assert "96.9% (percentile)" in text  # the record's own number, T=8
    assert "Records without a table row yet: `zz_new_kind.json`" in text
    assert _run("--check", *args).returncode == 0


def test_every_committed_record_has_a_row_function():
    rt = _module()
    kinds = {name: kind for name, _, kind in rt.load_records()}
    assert None not in kinds.values(), kinds
    assert set(kinds.values()) <= set(rt.ROWS)


def test_missing_markers_are_an_error():
    rt = _module()
    with pytest.raises(ValueError, match="exactly one"):
        rt.replace_block("no markers here\n", "x\n")


def test_recipe_row_lists_every_seed():
    rt = _module()
    record = json.loads((ROOT / "benchmarks" / "results" / "recipe_digits_events.json").read_text())
    record.update({"seeds": [{"seed": 0}, {"seed": 1}], "test_accuracy_per_seed": [0.975, 0.98]})
    (what, ours, _, _), = rt.recipe_rows(record, "r.json")
    assert ours == "seeds 0, 1: 97.5%, 98.0% (target 95.0%)"
    assert "166,596 parameters" in what and "10 epochs" in what
