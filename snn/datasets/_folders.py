"""Helpers for datasets stored as one file per sample in class folders."""

from __future__ import annotations

import re
from pathlib import Path


def natural_key(path: Path) -> list:
    """Sort key that orders ``x_2`` before ``x_10``."""
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", path.name)]


def class_folder_files(
    base: Path, classes: list[str] | tuple[str, ...], suffix: str
) -> tuple[list[Path], list[int]]:
    """Files ``base/<class>/**/*<suffix>`` in natural order, with class indices."""
    files: list[Path] = []
    targets: list[int] = []
    for i, cls in enumerate(classes):
        found = sorted((base / cls).rglob(f"*{suffix}"), key=natural_key)
        files.extend(found)
        targets.extend([i] * len(found))
    return files, targets
