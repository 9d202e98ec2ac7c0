"""Recycled memory for the large outputs of the fused CPU kernels.

Every forward pass returns fresh spikes ``[T, N]`` and every backward pass a fresh input
gradient. glibc serves a request above its mmap threshold (at most 32 MiB on 64-bit Linux)
with a new mapping and unmaps it on free, so each such output starts as untouched memory:
the kernel faults in and zeroes every page on first write, which at T=256, N=524288 float32
(512 MiB per output) costs about as much CPU time as the neuron's own arithmetic. Below the
threshold glibc recycles freed memory itself, and nothing here applies.

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

MIN_BYTES = 32 << 20
"""Outputs from this size up are recycled here (glibc's largest mmap threshold: smaller
blocks are recycled by malloc itself)."""

_IDLE: OrderedDict[int, np.ndarray] = OrderedDict()
"""Freed buffers waiting for reuse, oldest first, keyed by ``id`` (a cache, not
configuration)."""

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
        return sum(b.nbytes for b in _IDLE.values())


def release() -> int:
    """Return every idle buffer to the system; the number of bytes released."""
    with _LOCK:
        freed = sum(b.nbytes for b in _IDLE.values())
        _IDLE.clear()
    return freed


def _give_back(base: np.ndarray) -> None:
    """A tensor over ``base`` was freed: keep ``base`` for reuse within the idle limit."""
    limit = idle_limit()
    if base.nbytes > limit:
        return
    with _LOCK:
        _IDLE[id(base)] = base
        total = sum(b.nbytes for b in _IDLE.values())
        while total > limit:
            _, old = _IDLE.popitem(last=False)
            total -= old.nbytes


def _reuse(nbytes: int) -> np.ndarray | None:
    with _LOCK:
        for key, base in _IDLE.items():
            if base.nbytes == nbytes:
                del _IDLE[key]
                return base
    return None


def take(shape: tuple[int, ...], dtype: torch.dtype) -> Tensor | None:
    """An uninitialised CPU tensor of ``shape`` and ``dtype`` (float32 or float64) over
    recycled memory when a freed buffer of the same size waits, else over a new one that
    comes back here once the tensor is freed; ``None`` below :data:`MIN_BYTES`."""
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
