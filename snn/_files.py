"""Atomic file writes shared by every module that writes files (reports, caches, checkpoints).

A file is written under a temporary name in its target's folder and renamed over the target
with :func:`os.replace`, so readers (other processes, DataLoader workers) see either the old
file or the complete new one, never a partial file; on failure the temporary file is removed
and the target is left as it was. The new file gets the permissions an ordinary ``open`` would
give it (``0o666`` less the process umask), not the owner-only mode of
:func:`tempfile.mkstemp`.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text"]


@functools.lru_cache(maxsize=1)
def _file_mode() -> int:
    """``0o666`` less the umask, read once (``os.umask`` can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    encoding: str | None = None,
    fsync: bool = True,
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on a clean exit from the ``with``
    block it is flushed, optionally fsync'ed, and renamed to ``path``.

    Args:
        path: the target file; its folder is created if missing.
        mode: ``"wb"`` or ``"w"``.
        encoding: text encoding for ``mode="w"`` (default UTF-8).
        fsync: force the data to disk before the rename (durability across power loss).

    Raises:
        ValueError: for a mode other than ``"wb"`` or ``"w"``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        text = {"encoding": encoding or "utf-8"} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`); returns the path."""
    with atomic_open(path, "wb", fsync=fsync) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "w", fsync=fsync) as f:
        f.write(text)
    return Path(path)
