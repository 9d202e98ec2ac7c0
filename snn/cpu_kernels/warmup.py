"""A fast first call: the numba kernels compile in a separate process while the first calls
run on the reference.

Compiling the fused CPU loops takes seconds to minutes (numba, LLVM). Numba keeps the result
on disk (``cache=True``): next to the sources, or, on a read-only installation, in numba's
per-user cache directory (``~/.cache/numba``, or ``NUMBA_CACHE_DIR``), so each kernel
compiles once per installation and user, not once per process. When that cache is cold,
``backend="auto"`` starts one compilation in a child process (``python -m
snn.cpu_kernels.warmup``) and runs the reference implementation until the child has written
the cache; from then on the process loads the compiled kernels from disk. An explicit
``backend="numba"`` waits for the kernels instead. Nothing else changes: results are those of
the reference, which the kernels equal.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["cache_is_warm", "ensure_compiled", "main"]

_STATE: dict[str, Any] = {}
"""This process's knowledge of the kernels: ``ready`` once they load without compiling, and
the warm-up ``proc`` while it runs (a cache, not configuration)."""

LOCK_AGE = 900.0
"""Seconds after which a warm-up lock left by another process is considered stale."""


def cache_is_warm() -> bool:
    """Whether numba's disk cache holds the forward and backward loops of the current
    sources (read from numba's cache index, without compiling anything)."""
    from snn.cpu_kernels import loops

    try:
        for fn in (loops.forward, loops.backward):
            if not fn._cache._cache_file._load_index():
                return False
    except Exception:  # a numba without these internals: treat as cold, compile in-process
        return False
    return True


def _lock_path() -> Path:
    from snn.cpu_kernels import loops

    cache = Path(loops.forward._cache._cache_path)
    return cache / "snn-warmup.lock"


def _claim_lock() -> bool:
    """Create the warm-up lock (one warm-up per cache at a time); False if another live
    warm-up holds it."""
    try:
        path = _lock_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and time.time() - path.stat().st_mtime > LOCK_AGE:
            path.unlink(missing_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except (FileExistsError, PermissionError, OSError, AttributeError):
        return False
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def _start() -> subprocess.Popen | None:
    if not _claim_lock():
        return None
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the snn package
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", "snn.cpu_kernels.warmup"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=env, cwd=root, start_new_session=True,
    )


def ensure_compiled(block: bool) -> bool:
    """Whether the kernels can run now without compiling in this process.

    Args:
        block: wait for a running warm-up (an explicit ``backend="numba"``); without it, a
            cold cache starts the warm-up process and returns ``False`` (``"auto"`` then runs
            the reference).
    """
    if _STATE.get("ready"):
        return True
    if cache_is_warm():
        _STATE["ready"] = True
        return True
    proc = _STATE.get("proc")
    if block:
        if proc is not None:
            proc.wait()
        _STATE["ready"] = True  # whatever is still missing compiles in this process
        return True
    if proc is None:
        proc = _STATE["proc"] = _start()
        if proc is None:  # another process is warming the same cache
            _STATE["proc"] = _Waiting()
        return False
    if proc.poll() is None:
        return False
    _STATE["ready"] = True
    return True


class _Waiting:
    """Stands for a warm-up run by another process: done when the cache is warm."""

    def poll(self) -> int | None:
        return 0 if cache_is_warm() else None

    def wait(self) -> int:
        return 0


def main() -> int:
    """Compile the loops for float32 and float64 by running them once (the warm-up child)."""
    import torch

    from snn.fused.autograd import fused_sequence
    from snn.fused.description import get_description

    _STATE["ready"] = True
    try:
        for dtype in (torch.float32, torch.float64):
            x = torch.randn(3, 2, 4, dtype=dtype, requires_grad=True)
            out = fused_sequence("numba", get_description("lif"), x, None, True,
                                 {"beta": 0.9})
            (out.spikes.sum() + out.v.sum()).backward()
    finally:
        with contextlib.suppress(OSError):
            _lock_path().unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
