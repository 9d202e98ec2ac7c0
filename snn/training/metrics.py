"""Per-epoch metrics: CSV and JSON files rewritten atomically after every epoch, and TensorBoard
scalars when TensorBoard is installed."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from snn.training.checkpoint import atomic_write_bytes

__all__ = ["MetricsLogger"]


class MetricsLogger:
    """Keep one row of metrics per epoch and write them to ``out_dir``.

    Files: ``metrics.csv`` (one line per epoch, columns in first-seen order) and
    ``metrics.json`` (a list of rows). Both are rewritten in full, atomically, so a resumed run
    that starts from the checkpoint's history produces the same files as an uninterrupted one.

    Args:
        out_dir: folder of the files (created if missing).
        history: rows of earlier epochs (when resuming).
        tensorboard: also write TensorBoard scalars (skipped when TensorBoard is missing).
        enabled: ``False`` keeps rows in memory only (non-zero distributed ranks).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        history: list[dict[str, Any]] | None = None,
        *,
        tensorboard: bool = True,
        enabled: bool = True,
    ):
        self.out_dir = Path(out_dir)
        self.history: list[dict[str, Any]] = [dict(r) for r in history or []]
        self.enabled = bool(enabled)
        self._writer = None
        if self.enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._writer = None
            else:
                self._writer = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"))

    @property
    def tensorboard_enabled(self) -> bool:
        """Whether TensorBoard scalars are written."""
        return self._writer is not None

    def log(self, row: dict[str, Any]) -> None:
        """Add the metrics of one epoch (``row["epoch"]`` is its 1-based number) and rewrite
        the files."""
        if "epoch" not in row:
            raise ValueError("a metrics row needs an 'epoch' entry")
        self.history.append(dict(row))
        if not self.enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        columns: list[str] = []
        for r in self.history:
            columns += [k for k in r if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write_bytes(self.out_dir / "metrics.csv", lambda f: f.write(buf.getvalue().encode()))
        text = json.dumps(self.history, indent=1, default=_plain)
        atomic_write_bytes(self.out_dir / "metrics.json", lambda f: f.write(text.encode()))
        if self._writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._writer.add_scalar(key, value, int(row["epoch"]))
            self._writer.flush()

    def close(self) -> None:
        """Close the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
