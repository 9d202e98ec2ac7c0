"""A fast first call that keeps results reproducible: the numba kernels load in the calling
thread when they are cached, and compile in a separate process when they are not.

Compiling the fused CPU loops takes seconds to minutes (numba, LLVM). Numba keeps the result
on disk (``cache=True``): next to the sources, or, on a read-only installation, in numba's
per-user cache directory (``$XDG_CACHE_HOME/numba``, default ``~/.cache/numba``, or
``NUMBA_CACHE_DIR``; see :func:`cache_directory`), so each kernel compiles once per
installation and user, not once per process.

With ``backend="auto"``, the first call on a CPU tensor of a dtype decides, once per process,
which implementation that dtype runs on:

- **warm cache**: the calling thread imports numba and loads only that dtype's forward and
  backward specialisations (by running them once on a tiny input), about a second of CPU time:
  importing numba, numba's registration of its implementation library (which imports
  ``scipy.linalg``) and the machine code. Every call of the process runs the kernels.
- **cold cache**: one compilation starts in a child process (``python -m
  snn.cpu_kernels.warmup``; one per cache at a time, guarded by a lock file) and this process
  runs the reference for that dtype until it ends; the next process finds a warm cache.

The choice is made once and never changes in the middle of a run: the kernels and the
reference agree to rounding, not always to the last bit, and a switch at a moment set by the
compiler's progress would make training depend on the machine's load. An explicit
``backend="numba"`` waits for the compilation (or compiles in the calling thread), and
:func:`use_kernels` does the same for every later ``"auto"`` call of the process (what the
benchmarks and recipes under ``benchmarks/`` call first).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["CompileWarning", "cache_directory", "cache_is_warm", "ensure_compiled", "main",
           "status", "use_kernels"]

_STATE: dict[str, Any] = {"ready": set(), "reference": set(), "loaders": {},
                          "lock": threading.RLock()}
"""This process's knowledge of the kernels (a cache, not configuration): ``ready``, the dtypes
whose kernels this process runs; ``reference``, the dtypes whose first call found a cold cache
and which run on the reference to the end of the process; ``all``, set once an explicit wait
made every dtype load in the calling thread; ``loaders``, the background compilation thread;
``proc``, the warm-up process this process started; ``log``, the file its error output goes
to; ``error``, why the background compilation failed (reported once, see :func:`status`)."""


class CompileWarning(RuntimeWarning):
    """The kernels' compilation in the background failed: this process keeps running the
    reference, and the next process will try again."""

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
    from snn.cpu_kernels import lif_loops, loops

    try:
        for fn in (loops.forward, loops.backward, lif_loops.forward, lif_loops.backward):
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
    log = tempfile.TemporaryFile()  # noqa: SIM115  (the child's error output, closed by _log_tail)
    _STATE["log"] = log
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the snn package
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", "snn.cpu_kernels.warmup"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
        env=env, cwd=root, start_new_session=True,
    )


def _wait_for_cache() -> None:
    """Wait until the cache is warm: start the warm-up process (once per process) and wait
    for it, or wait for the one another process runs (or, if that lock goes stale, start
    one). Returns without a warm cache when no lock can be made or after :data:`LOCK_AGE`
    seconds: the caller then compiles in this process.

    Raises:
        RuntimeError: when the warm-up process this process started fails (its exit status
            and the last lines of its error output).
    """
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
            code = proc.wait()
            tail = _log_tail()
            if code:
                raise RuntimeError(f"the compilation process (python -m snn.cpu_kernels.warmup) "
                                   f"exited with status {code}{tail}")
            return
        time.sleep(POLL)


def _log_tail(lines: int = 5) -> str:
    """The last ``lines`` lines of the warm-up process's error output, as ``": ..."``; closes
    the file."""
    log = _STATE.pop("log", None)
    if log is None:
        return ""
    try:
        with log:
            log.seek(0)
            text = log.read().decode(errors="replace").strip()
    except (OSError, ValueError):
        return ""
    return ": " + " | ".join(text.splitlines()[-lines:]) if text else ""


def _report(err: BaseException) -> None:
    """Record why the background compilation failed and warn, once per process."""
    with _STATE["lock"]:
        if _STATE.get("error"):
            return
        _STATE["error"] = f"{type(err).__name__}: {err}"
    warnings.warn(
        f"snn: compiling the numba CPU kernels in the background failed ({_STATE['error']}); "
        "this process runs the PyTorch reference, and the next one will compile again. "
        "snn.cpu_kernels.warmup.status()['error'] keeps the cause.",
        CompileWarning, stacklevel=2,
    )


def _exercise(dtype: torch.dtype) -> None:
    """Run the forward and backward loops once for ``dtype`` on a tiny input, the staged
    loops (a recorded membrane) and the LIF loops of :mod:`snn.cpu_kernels.lif_loops`: loads
    their specialisations from the cache (or compiles them)."""
    from snn.fused.autograd import fused_sequence
    from snn.fused.description import get_description

    # the caller may be under no_grad or inference_mode, and its random stream stays untouched
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.randn(3, 2, 4, dtype=dtype, generator=torch.Generator().manual_seed(0))
        x.requires_grad_()
        out = fused_sequence("numba", get_description("lif"), x, None, True, {"beta": 0.9})
        (out.spikes.sum() + out.v.sum()).backward()
        out = fused_sequence("numba", get_description("lif"), x, None, False, {"beta": 0.9})
        out.spikes.sum().backward()


def _exercise_packing(dtype: torch.dtype) -> None:
    """Compile (or load) the packing loops of :mod:`snn.cpu_kernels.pack` for ``dtype``, so
    that a process finding a warm cache loads them instead of compiling."""
    from snn.cpu_kernels import pack

    as_int = np.int32 if dtype == torch.float32 else np.int64
    values = np.array([0.0, 1.0, 2.0], dtype=np.float32 if dtype == torch.float32 else np.float64)
    bits = np.empty(1, np.uint8)
    pack.pack_bits(values[:2].view(as_int), int(values[1:2].view(as_int)[0]), bits)
    pack.pack_u8(values, values.view(as_int), np.empty(3, np.uint8))
    pack.unpack_bits(bits, np.empty(2, values.dtype))


def _compile_elsewhere() -> None:
    """The background thread's work on a cold cache: import numba, then start (or wait for)
    the one compilation that fills the cache for the next processes."""
    try:
        import snn.cpu_kernels.loops  # noqa: F401  (numba)

        if not cache_is_warm():
            _wait_for_cache()
    except Exception as err:  # this thread has no caller: the failure is reported here
        _report(err)


def status() -> dict[str, Any]:
    """What this process knows of its CPU kernels: ``ready`` (dtypes that run the kernels),
    ``reference`` (dtypes that run the reference to the end of the process, their first call
    having met a cold cache), ``compiling`` (a background compilation under way) and ``error``
    (why the background compilation failed, or ``None``)."""
    loaders = list(_STATE["loaders"].values())
    return {
        "ready": sorted(map(str, DTYPES if _STATE.get("all") else _STATE["ready"])),
        "reference": sorted(map(str, _STATE["reference"])),
        "compiling": any(t.is_alive() for t in loaders),
        "error": _STATE.get("error"),
    }


def _load(dtype: torch.dtype) -> bool:
    """Load ``dtype``'s kernels in the calling thread when the cache is warm; ``False`` (and
    a compilation started elsewhere) when it is cold."""
    try:
        from snn.cpu_kernels import loops  # noqa: F401  (numba)
    except Exception:
        return False
    if not cache_is_warm():
        return False
    _exercise(dtype)
    return True


def ensure_compiled(block: bool, dtype: torch.dtype | None = None) -> bool:
    """Whether the kernels for ``dtype`` run in this process (see the module docstring).

    Args:
        block: an explicit ``backend="numba"``: wait for a compilation under way, then
            whatever is still missing loads or compiles in the calling thread; always
            ``True``. Without it (``"auto"``), the first call for a dtype loads its kernels
            from a warm cache and returns ``True``, or, on a cold cache, starts their
            compilation elsewhere and returns ``False``; later calls give the same answer for
            the rest of the process.
        dtype: the input's dtype; ``None`` (with ``block``) for every dtype.
    """
    if dtype is None and not block:
        dtype = torch.float32
    if not block and dtype in _STATE["reference"]:
        return False  # decided at this process's first call: the reference, to the end
    if _STATE.get("all") or dtype in _STATE["ready"]:
        return True
    if dtype is not None and dtype not in DTYPES:
        return True  # nothing to load: the engine refuses the dtype itself
    if block:
        for key in DTYPES if dtype is None else (dtype,):
            loader = _STATE["loaders"].get(key)
            if loader is threading.current_thread():
                return True  # the background thread itself
            if loader is not None:
                loader.join()
        if dtype is None:
            _STATE["all"] = True
        else:
            _STATE["ready"].add(dtype)
        return True
    with _STATE["lock"]:
        if dtype in _STATE["ready"]:
            return True
        if dtype in _STATE["reference"]:
            return False
        if _load(dtype):
            _STATE["ready"].add(dtype)
            return True
        _STATE["reference"].add(dtype)
        if not _STATE["loaders"]:
            loader = threading.Thread(target=_compile_elsewhere, daemon=True,
                                      name="snn-numba-compile")
            _STATE["loaders"][dtype] = loader
            loader.start()
        else:
            _STATE["loaders"][dtype] = next(iter(_STATE["loaders"].values()))
    return False


def use_kernels() -> dict[str, Any]:
    """Make every later ``backend="auto"`` CPU call of this process run the kernels, waiting
    for (or doing) their compilation, for scripts whose results must not depend on the state
    of the cache (benchmarks and recipes: the kernels and the reference differ in the last
    bits, and a benchmark must time the path it names). Returns :func:`status`, which such a
    script writes to its record; where numba is missing, nothing changes and the status says
    so (``ready`` empty)."""
    try:
        import snn.cpu_kernels.loops  # noqa: F401  (numba)
    except ImportError:
        return {**status(), "error": "numba is not installed"}
    ensure_compiled(True)
    return status()


def main() -> int:
    """Compile the loops for every dtype by running them once (the warm-up child)."""
    _STATE["all"] = True
    try:
        for dtype in DTYPES:
            _exercise(dtype)
            _exercise_packing(dtype)
    finally:
        with contextlib.suppress(OSError):
            _lock_path().unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
