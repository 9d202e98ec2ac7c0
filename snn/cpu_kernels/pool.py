"""Recycled memory for the large outputs of the fused CPU kernels.

Every forward pass returns fresh spikes ``[T, N]`` and every backward pass a fresh input
gradient. glibc serves a request above its mmap threshold (at most 32 MiB on 64-bit Linux)
with a new mapping and unmaps it on free, so each such output starts as untouched memory:
the kernel faults in and zeroes every page on first write, which at T=256, N=524288 float32
(512 MiB per output) costs about as much CPU time as the neuron's own arithmetic. Below 32
MiB whether glibc recycles a freed block depends on its dynamic threshold and on the
allocation history: a loop of ``torch.empty`` of 16 MiB, written once each, faulted in all
4096 pages on every call (about 5 ms, as long as the neuron's forward at T=64, N=65536), so
outputs from :data:`MIN_BYTES` (1 MiB) up are recycled here.

:func:`take` hands out such outputs from memory whose earlier tensor has been freed, the way
PyTorch's CUDA caching allocator does on the GPU: in a training loop, the spikes and
gradients of one iteration are freed before the next iteration asks for the same sizes
again. A tensor handed out is an ordinary CPU tensor over a NumPy buffer; its memory comes
back here only when its storage is freed (no view, no autograd graph, nothing else holds
it), so nothing is ever shared between live tensors. Such a tensor cannot be resized to more
elements (``resize_``), like any tensor made by :func:`torch.from_numpy`.

Freed buffers wait for reuse up to :func:`idle_limit` bytes in all (the oldest are released
first); :func:`release` returns them all to the system.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections import OrderedDict

import numpy as np
import torch
from torch import Tensor

__all__ = ["MIN_BYTES", "idle_bytes", "idle_limit", "release", "take"]

MIN_BYTES = 1 << 20
"""Outputs from this size up are recycled here (below it a page fault or two per output is
noise next to the kernel's work)."""

_IDLE: OrderedDict[int, np.ndarray] = OrderedDict()
"""Freed buffers waiting for reuse, oldest first, keyed by ``id`` (a cache, not
configuration)."""

_BY_SIZE: dict[int, dict[int, None]] = {}
"""The ``id`` of the idle buffers of each size in bytes, oldest first."""

_TOTAL = [0]
"""Bytes held in :data:`_IDLE`."""

_LOCK = threading.RLock()


@functools.cache
def idle_limit() -> int:
    """Most bytes kept idle: an eighth of the machine's memory, at most 4 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return min(4 << 30, total // 8)


def idle_bytes() -> int:
    """Bytes of freed outputs currently kept for reuse."""
    with _LOCK:
        return _TOTAL[0]


def release() -> int:
    """Return every idle buffer to the system; the number of bytes released."""
    with _LOCK:
        freed = _TOTAL[0]
        _IDLE.clear()
        _BY_SIZE.clear()
        _TOTAL[0] = 0
    return freed


def _remove(key: int) -> np.ndarray:
    """Take the idle buffer ``key`` out of the pool (lock held)."""
    base = _IDLE.pop(key)
    same = _BY_SIZE[base.nbytes]
    del same[key]
    if not same:
        del _BY_SIZE[base.nbytes]
    _TOTAL[0] -= base.nbytes
    return base


def _give_back(base: np.ndarray) -> None:
    """A tensor over ``base`` was freed: keep ``base`` for reuse within the idle limit."""
    limit = idle_limit()
    if base.nbytes > limit:
        return
    with _LOCK:
        _IDLE[id(base)] = base
        _BY_SIZE.setdefault(base.nbytes, {})[id(base)] = None
        _TOTAL[0] += base.nbytes
        while _TOTAL[0] > limit:
            _remove(next(iter(_IDLE)))


def _reuse(nbytes: int) -> np.ndarray | None:
    with _LOCK:
        same = _BY_SIZE.get(nbytes)
        return _remove(next(iter(same))) if same else None


def take(shape: tuple[int, ...], dtype: torch.dtype) -> Tensor | None:
    """An uninitialised CPU tensor of ``shape`` and ``dtype`` (float32 or float64) over
    recycled memory when a freed buffer of the same size waits, else over a new one that
    comes back here once the tensor is freed; ``None`` below :data:`MIN_BYTES` and for any
    other dtype."""
    if dtype not in (torch.float32, torch.float64):
        return None
    np_dtype = np.dtype(np.float32 if dtype == torch.float32 else np.float64)
    nbytes = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
    if nbytes < MIN_BYTES or nbytes > idle_limit():
        return None
    base = _reuse(nbytes)
    if base is None:
        base = np.empty(nbytes, np.uint8)  # numpy asks for transparent huge pages itself
    view = base.view(np_dtype).reshape(shape)
    done = weakref.finalize(view, _give_back, base)  # when the tensor's storage releases it
    done.atexit = False  # nothing to keep at exit
    return torch.from_numpy(view)
