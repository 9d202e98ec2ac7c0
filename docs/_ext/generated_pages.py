"""Pages made at build time: the tutorials (copied notebooks) and the benchmark tables.

The notebooks live in ``notebooks/`` (outside the documentation's source folder), so they are
copied to ``docs/_generated/tutorials/`` unchanged. The benchmark page renders every record in
``benchmarks/results/*.json`` as tables: top-level values as a field/value table, each list of
rows as one table (nested fields flattened to dotted names), without interpreting a number.
Files are rewritten only when their content changes, so incremental builds stay incremental.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
OUT = DOCS / "_generated"
MAX_COLUMNS = 10
_ESCAPE = str.maketrans({c: "\\" + c for c in "|*_[]`<>#"})


def _write(path: Path, text: str) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=False).translate(_ESCAPE)
    return str(value).replace("\n", " ").translate(_ESCAPE)


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(h.translate(_ESCAPE) for h in header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return [*lines, ""]


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list) or (
        isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)
    )


def _records(names: list[str], rows: list[dict[str, Any]], lines: list[str]) -> None:
    """Records side by side: one row per record, or one column per record when that is
    narrower, or else one field/value table per record."""
    flat = [_flatten(r) for r in rows]
    fields = list(dict.fromkeys(k for r in flat for k in r))
    if len(fields) + 1 <= MAX_COLUMNS:
        lines += _table(
            ["", *fields],
            [
                [n.translate(_ESCAPE)] + [_cell(r.get(f, "")) for f in fields]
                for n, r in zip(names, flat)
            ],
        )
    elif len(names) + 1 <= MAX_COLUMNS:
        lines += _table(
            ["", *names],
            [[f.translate(_ESCAPE)] + [_cell(r.get(f, "")) for r in flat] for f in fields],
        )
    else:
        for n, r in zip(names, flat):
            lines += [n.translate(_ESCAPE), ""]
            lines += _table(
                ["field", "value"], [[k.translate(_ESCAPE), _cell(v)] for k, v in r.items()]
            )


def _render(obj: Any, title: str, depth: int, lines: list[str]) -> None:
    """Tables for ``obj``: ``###`` titles below a record, bold titles deeper down."""
    heading = f"### {title}" if depth == 1 else f"**{title.translate(_ESCAPE)}**"
    if isinstance(obj, dict):
        scalars = {k: v for k, v in obj.items() if _is_scalar(v)}
        nested = {k: v for k, v in obj.items() if not _is_scalar(v)}
        if (
            depth > 0
            and not scalars
            and len(nested) >= 2
            and all(isinstance(v, dict) for v in nested.values())
        ):  # a dict of records (one per model, per method, ...): one table
            lines += [heading, ""]
            _records([str(k) for k in nested], list(nested.values()), lines)
            return
        if scalars:
            if depth > 0:
                lines += [heading, ""]
            lines += _table(
                ["field", "value"], [[k.translate(_ESCAPE), _cell(v)] for k, v in scalars.items()]
            )
        for key, value in nested.items():
            _render(value, f"{title} / {key}" if depth > 0 else key, depth + 1, lines)
        return
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        lines += [heading, ""]
        _records([str(i + 1) for i in range(len(obj))], obj, lines)
        return
    lines += [heading, "", _cell(obj), ""]


def benchmark_page(results: Path) -> str:
    """The Markdown page of every JSON record in ``results``."""
    lines = [
        "# Benchmark records",
        "",
        "Every table below is generated, when the documentation is built, from the records "
        "committed in `benchmarks/results/`; nothing is retyped. Each record names the machine, "
        "thread count and load average it ran under; the peers were measured in the same run. "
        "The scripts that write them are in `benchmarks/`.",
        "",
    ]
    for path in sorted(results.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        lines += [f"## {path.name}", ""]
        if isinstance(record, dict) and isinstance(record.get("benchmark"), str):
            lines += [record["benchmark"].translate(_ESCAPE), ""]
        _render(record, path.stem, 0, lines)
    return "\n".join(lines)


def generate(app: Any = None) -> None:
    """Copy the notebooks and write the benchmark page under ``docs/_generated``."""
    tutorials = OUT / "tutorials"
    tutorials.mkdir(parents=True, exist_ok=True)
    wanted = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    for stale in tutorials.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        target = tutorials / notebook.name
        if not target.is_file() or target.read_bytes() != notebook.read_bytes():
            shutil.copyfile(notebook, target)
    _write(OUT / "benchmarks.md", benchmark_page(ROOT / "benchmarks" / "results"))


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
