"""Atomic file writes: complete files only, ordinary permissions, nothing left on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from snn._files import atomic_open, atomic_write_bytes, atomic_write_text


def test_writes_whole_files_and_creates_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.json"
    atomic_write_text(target, '{"x": 1}')
    assert target.read_text() == '{"x": 1}'
    with atomic_open(tmp_path / "arrays.npz", fsync=False) as f:
        np.savez(f, x=np.arange(3))
    assert np.load(tmp_path / "arrays.npz")["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "arrays.npz"]


def test_permissions_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        from snn._files import _file_mode

        _file_mode.cache_clear()
        path = atomic_write_bytes(tmp_path / "report.bin", b"data")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(old)
        _file_mode.cache_clear()
    path = atomic_write_bytes(tmp_path / "again.bin", b"data")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~old


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_open(target) as f:
        f.write(b"partial new content")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_rejects_modes_that_are_not_whole_file_writes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w'"), atomic_open(
        tmp_path / "x", "ab"
    ):
        pass
