"""A fast first call: the numba kernels are compiled in a separate process and loaded on a
background thread while the first calls run on the reference.

Compiling the fused CPU loops takes seconds to minutes (numba, LLVM). Numba keeps the result
on disk (``cache=True``): next to the sources, or, on a read-only installation, in numba's
per-user cache directory (``$XDG_CACHE_HOME/numba``, default ``~/.cache/numba``, or
``NUMBA_CACHE_DIR``; see :func:`cache_directory`), so each kernel compiles once per
installation and user, not once per process.

Even from a warm cache, making the kernels callable costs about a second of CPU time in each
process: importing numba, numba's registration of its whole implementation library (which
imports ``scipy.linalg``), and loading the machine code of each specialisation. So with
``backend="auto"`` the first call on a CPU tensor of a dtype starts a *loader* thread for that
dtype and runs the reference implementation; the loader imports numba, and

- if the cache is cold, starts one compilation in a child process (``python -m
  snn.cpu_kernels.warmup``; one per cache at a time, guarded by a lock file) and waits for it,
- then loads only that dtype's forward and backward specialisations (by running them once on
  a tiny input).

Calls made after the loader has finished run the kernels. An explicit ``backend="numba"``
waits for the loader (or loads and compiles in the calling thread). Nothing else changes:
results are those of the reference, which the kernels equal.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["cache_directory", "cache_is_warm", "ensure_compiled", "main"]

_STATE: dict[str, Any] = {"ready": set(), "loaders": {}, "lock": threading.Lock()}
"""This process's knowledge of the kernels (a cache, not configuration): ``ready``, the dtypes
whose kernels run without compiling or loading; ``all``, set once an explicit wait made every
dtype load in the calling thread; ``loaders``, the loader thread of each dtype; ``proc``, the
warm-up process this process started."""

LOCK_AGE = 900.0
"""Seconds after which a warm-up lock left by another process is considered stale."""

POLL = 0.5
"""Seconds between two looks at the cache while another process compiles it."""

DTYPES = (torch.float32, torch.float64)
"""The dtypes the loops are compiled for."""


def cache_directory() -> Path:
    """The directory numba caches the loops in: ``__pycache__`` next to
    :mod:`snn.cpu_kernels.loops` when it is writable, else the per-user cache directory
    (``NUMBA_CACHE_DIR`` first when set). Imports numba."""
    from snn.cpu_kernels import loops

    return Path(loops.forward._cache._cache_path)


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
    return cache_directory() / "snn-warmup.lock"


def _claim_lock() -> bool:
    """Create the warm-up lock (one warm-up per cache at a time); False if another live
    warm-up holds it.

    Raises:
        OSError: when no lock can be made there (a cache directory nobody can write).
    """
    try:
        path = _lock_path()
    except AttributeError as err:  # a numba without these internals
        raise OSError(f"numba's cache location is unknown: {err}") from err
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and time.time() - path.stat().st_mtime > LOCK_AGE:
        path.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def _start() -> subprocess.Popen | None:
    """Start the warm-up process, or ``None`` when another process holds the lock.

    Raises:
        OSError: when the lock cannot be made (see :func:`_claim_lock`).
    """
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


def _wait_for_cache() -> None:
    """Wait until the cache is warm: start the warm-up process (once per process) and wait
    for it, or wait for the one another process runs (or, if that lock goes stale, start
    one). Returns without a warm cache when no lock can be made or after :data:`LOCK_AGE`
    seconds: the caller then compiles in this process."""
    deadline = time.monotonic() + LOCK_AGE
    while not cache_is_warm() and time.monotonic() < deadline:
        with _STATE["lock"]:
            proc = _STATE.get("proc")
            if proc is None:
                try:
                    proc = _start()
                except OSError:
                    return
                if proc is not None:
                    _STATE["proc"] = proc
        if proc is not None:
            proc.wait()
            return
        time.sleep(POLL)


def _exercise(dtype: torch.dtype) -> None:
    """Run the forward and backward loops once for ``dtype`` on a tiny input: loads their
    specialisations from the cache (or compiles them)."""
    from snn.fused.autograd import fused_sequence
    from snn.fused.description import get_description

    x = torch.randn(3, 2, 4, dtype=dtype, requires_grad=True)
    out = fused_sequence("numba", get_description("lif"), x, None, True, {"beta": 0.9})
    (out.spikes.sum() + out.v.sum()).backward()


def _load(dtype: torch.dtype) -> None:
    """The loader thread's work for ``dtype`` (see the module docstring)."""
    try:
        import snn.cpu_kernels.loops  # noqa: F401  (numba)

        if not cache_is_warm():
            _wait_for_cache()
        _exercise(dtype)
    except Exception:
        pass


def ensure_compiled(block: bool, dtype: torch.dtype | None = None) -> bool:
    """Whether the kernels for ``dtype`` can run now without compiling or loading them.

    Args:
        block: wait for the loader of ``dtype`` (an explicit ``backend="numba"``); whatever
            is still missing then loads or compiles in the calling thread. Without it, the
            first call for a dtype starts its loader and returns ``False`` (``"auto"`` then
            runs the reference), and later calls return ``False`` until the loader is done.
        dtype: the input's dtype; ``None`` (with ``block``) for every dtype.
    """
    if _STATE.get("all") or dtype in _STATE["ready"]:
        return True
    if dtype is not None and dtype not in DTYPES:
        return True  # nothing to load: the engine refuses the dtype itself
    if block:
        for key in DTYPES if dtype is None else (dtype,):
            loader = _STATE["loaders"].get(key)
            if loader is threading.current_thread():
                return True  # the loader itself, loading
            if loader is not None:
                loader.join()
        if dtype is None:
            _STATE["all"] = True
        else:
            _STATE["ready"].add(dtype)
        return True
    loader = _STATE["loaders"].get(dtype)
    if loader is None:
        with _STATE["lock"]:
            loader = _STATE["loaders"].get(dtype)
            if loader is None:
                loader = threading.Thread(target=_load, args=(dtype,), daemon=True,
                                          name=f"snn-numba-loader-{dtype}")
                _STATE["loaders"][dtype] = loader
                loader.start()
        return False
    if loader.is_alive():
        return False
    _STATE["ready"].add(dtype)
    return True


def main() -> int:
    """Compile the loops for every dtype by running them once (the warm-up child)."""
    _STATE["all"] = True
    try:
        for dtype in DTYPES:
            _exercise(dtype)
    finally:
        with contextlib.suppress(OSError):
            _lock_path().unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
