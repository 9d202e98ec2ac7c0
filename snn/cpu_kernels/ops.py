"""The CPU engine (numba) of the ``"numba"`` backend.

The backend table (:func:`snn.backends.implementations`) runs every neuron with fused kernels
through this engine (:data:`ENGINE`) by way of :func:`snn.fused.autograd.fused_sequence`.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snn.backends import UnsupportedConfiguration
from snn.cpu_kernels import pool
from snn.cpu_kernels.warmup import ensure_compiled
from snn.fused.autograd import BackwardResult, ForwardResult, FusedSpec, Saved
from snn.fused.description import KIND_ALIF, KIND_CUBA

__all__ = ["ENGINE", "NumbaEngine"]


def _np(t: Tensor) -> np.ndarray:
    return t.detach().numpy()


HUGE_PAGE = 1 << 21
"""Size of a transparent huge page on x86-64 and arm64 Linux."""


@functools.cache
def _madvise() -> Any:
    """libc's ``madvise`` on Linux, else ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def fresh(like: Tensor, *shape: int) -> Tensor:
    """A new output tensor (``like``'s dtype, ``shape`` or ``like``'s shape) whose large
    pages are requested as transparent huge pages before anything touches them.

    A large fresh allocation is mapped from the kernel page by page on first write; with
    4 KiB pages that is one fault per 4 KiB of every output (a large part of a memory-bound
    kernel's time). ``madvise(MADV_HUGEPAGE)`` makes each fault map 2 MiB (as PyTorch's own
    ``THP_MEM_ALLOC_ENABLE`` does for all its allocations); where huge pages are disabled
    the call fails harmlessly and nothing changes.

    Outputs of :data:`snn.cpu_kernels.pool.MIN_BYTES` and more come from
    :mod:`snn.cpu_kernels.pool`, which recycles the memory of freed outputs instead (no page
    to fault in or zero once a training loop runs).
    """
    pooled = pool.take(tuple(shape) if shape else tuple(like.shape), like.dtype)
    if pooled is not None:
        return pooled
    t = like.new_empty(shape) if shape else torch.empty_like(like)
    nbytes = t.numel() * t.element_size()
    madvise = _madvise()
    if madvise is not None and nbytes >= 2 * HUGE_PAGE:
        start = -(-t.data_ptr() // HUGE_PAGE) * HUGE_PAGE
        end = (t.data_ptr() + nbytes) // HUGE_PAGE * HUGE_PAGE
        if end > start:
            madvise(start, end - start, MADV_HUGEPAGE)
    return t


MADV_HUGEPAGE = 14
"""``madvise`` advice value of Linux (``<sys/mman.h>``)."""


def _constants(spec: FusedSpec, dtype: torch.dtype) -> np.ndarray:
    from snn.cpu_kernels import loops

    p = np.zeros(loops.N_CONST, dtype=torch.empty((), dtype=dtype).numpy().dtype)
    p[loops.P_ONE] = 1.0
    p[loops.P_VRESET] = spec.v_reset
    p[loops.P_ALPHA] = spec.alpha
    p[loops.P_RHO] = spec.beta_adapt
    p[loops.P_CRHO] = spec.c_adapt
    p[loops.P_GAMMA] = spec.adapt_scale
    p[loops.P_K0], p[loops.P_K1], p[loops.P_K2] = spec.sg
    p[loops.P_LEVELS] = spec.levels
    return p


SERIAL_WORK = 1 << 22
"""Below this many neuron-steps a call runs on the calling thread: waking a thread pool costs
more than the work (milliseconds on a busy machine)."""


@contextlib.contextmanager
def _threads_for(T: int, N: int) -> Iterator[None]:
    """Use one thread for small problems (numba's thread count is thread-local); leave
    PyTorch's thread count as it was."""
    import numba

    from snn.cpu_kernels import loops

    torch_threads = torch.get_num_threads()  # before numba's first call starts its threads
    previous = numba.get_num_threads()
    serial = T * N < SERIAL_WORK or loops.backward_block(T) >= N
    if serial:
        numba.set_num_threads(1)
    try:
        yield
    finally:
        if serial:
            numba.set_num_threads(previous)
        # numba's OpenMP layer sets the process-wide OpenMP thread count, which PyTorch reads
        # as its own: put back the count the caller chose (torch.set_num_threads)
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)


def _workers() -> int:
    import numba

    return numba.get_num_threads()


def _grad_mode(g: Tensor | None, like: np.ndarray) -> tuple[np.ndarray, int]:
    """A gradient as the loops take it: full ``[T, N]`` (0), one value (1) or none (2)."""
    if g is None:
        return like[:1, :1], 2
    if all(s == 0 for s in g.stride()):
        return _np(g.reshape(-1)[:1].reshape(1, 1).contiguous()), 1
    return _np(g.contiguous()), 0


def _out(out: Tensor, like: Tensor) -> Tensor:
    if (out.shape != like.shape or out.dtype != like.dtype or out.device != like.device
            or not out.is_contiguous()):
        raise ValueError(f"numba engine: out must be a contiguous {like.dtype} tensor of shape "
                         f"{tuple(like.shape)} on {like.device}, got {out.dtype} "
                         f"{tuple(out.shape)}")
    return out


class NumbaEngine:
    """Fused forward/backward over ``[T, N]`` on CPU tensors (float32, float64). Backward
    recomputes the forward recurrence from the kept input (see :mod:`snn.cpu_kernels.loops`)."""

    name = "numba"
    dtypes = (torch.float32, torch.float64)
    devices = ("cpu",)
    recompute = True

    def prepare(self, block: bool, dtype: torch.dtype | None = None) -> bool:
        """Whether the kernels for ``dtype`` run now without compiling or loading them in
        this thread (see :mod:`snn.cpu_kernels.warmup`); ``block`` waits for them."""
        return ensure_compiled(block, dtype)

    def forward(self, spec: FusedSpec, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor,
                beta: Tensor, c: Tensor, thr: Tensor, record: bool,
                out: Tensor | None = None) -> ForwardResult:
        """``out``: where to write the spikes, ``x`` itself allowed (each input value is
        read before its step's spike is written); a new tensor when ``None``."""
        from snn.cpu_kernels import lif_loops, loops

        ensure_compiled(True, x.dtype)  # after any compilation under way (thread safety)
        N = x.shape[1]
        spikes = fresh(x) if out is None else _out(out, x)
        v_rec = fresh(x) if record else None
        v_t, i_t, a_t = fresh(x, N), fresh(x, N), fresh(x, N)
        consts = _constants(spec, x.dtype)
        inplace = spikes.data_ptr() == x.data_ptr()
        with _threads_for(*x.shape):
            workers = _workers()
            if lif_loops.applies(spec.kind, spec.fire, beta, c, thr, record):
                lif_loops.forward(
                    _np(x), _np(v0), _np(i0), _np(beta), _np(c), _np(thr), consts, spec.kind,
                    spec.reset, lif_loops.forward_block(N, workers), workers, _np(spikes),
                    _np(v_t), _np(i_t),
                    lif_loops.streams(spikes.numel() * spikes.element_size()),
                )
                return ForwardResult(spikes, None, v_t, i_t if spec.kind == KIND_CUBA else None,
                                     None)
            loops.forward(
                _np(x), _np(v0), _np(i0), _np(a0), _np(beta), _np(c), _np(thr),
                consts, spec.kind, spec.reset, spec.fire, bool(record),
                workers, _np(spikes),
                _np(v_rec if v_rec is not None else x.new_empty(1, 1)),
                _np(v_t), _np(i_t), _np(a_t), inplace,
            )
        return ForwardResult(
            spikes, v_rec, v_t,
            i_t if spec.kind == KIND_CUBA else None,
            a_t if spec.kind == KIND_ALIF else None,
        )

    def backward(self, spec: FusedSpec, saved: Saved, g_s: Tensor | None,
                 g_vrec: Tensor | None, g_vt: Tensor, g_it: Tensor, g_at: Tensor,
                 want_beta: bool, want_thr: bool, out: Tensor | None = None
                 ) -> BackwardResult:
        """``out``: where to write the input's gradient, ``saved.x`` itself allowed (each
        input value is read before its gradient is written); a new tensor when ``None``."""
        from snn.cpu_kernels import lif_loops, loops

        x = saved.x
        assert x is not None and saved.v0 is not None
        ensure_compiled(True, x.dtype)
        if spec.surrogate_id not in loops.KERNEL_IDS:
            raise UnsupportedConfiguration(
                f"numba backend: surrogate kernel_id {spec.surrogate_id} was registered after "
                f"the CPU kernels were loaded (compiled: {sorted(loops.KERNEL_IDS)})"
            )
        T, N = x.shape
        gx = fresh(x) if out is None else _out(out, x)
        dummy2 = _np(x.new_zeros(1, 1))
        gs, gs_mode = _grad_mode(g_s, dummy2)
        gv, gv_mode = _grad_mode(g_vrec, dummy2)
        gv0, gi0, ga0 = fresh(x, N), fresh(x, N), fresh(x, N)
        # per-neuron sums only where wanted (the loops leave them alone otherwise)
        gbeta = torch.empty(N if want_beta else 1, dtype=torch.float64)
        gthr = torch.empty(N if want_thr else 1, dtype=torch.float64)
        with _threads_for(T, N):
            workers = _workers()
            if lif_loops.applies(spec.kind, spec.fire, saved.beta, saved.c, saved.thr,
                                 gv_mode=gv_mode):
                lif_loops.backward(
                    _np(x), _np(saved.v0), _np(saved.i0), _np(saved.beta), _np(saved.c),
                    _np(saved.thr), _constants(spec, x.dtype), spec.kind, spec.reset,
                    spec.detach_reset, spec.surrogate_id, gs, gs_mode, _np(g_vt), _np(g_it),
                    bool(want_beta), spec.decay_input, bool(want_thr),
                    lif_loops.backward_block(T, x.element_size(), N, workers), workers, _np(gx),
                    _np(gv0), _np(gi0), _np(gbeta), _np(gthr),
                )
                ga0.copy_(g_at)  # as the staged loops: no adaptation, passed through
                return BackwardResult(gx, gv0, gi0, ga0, gbeta if want_beta else None,
                                      gthr if want_thr else None)
            loops.backward(
                _np(x), _np(saved.v0), _np(saved.i0), _np(saved.a0),
                _np(saved.beta), _np(saved.c), _np(saved.thr),
                _constants(spec, x.dtype),
                spec.kind, spec.reset, spec.fire, spec.detach_reset, spec.surrogate_id,
                gs, gs_mode, gv, gv_mode, _np(g_vt), _np(g_it), _np(g_at),
                bool(want_beta), spec.decay_input, bool(want_thr), loops.backward_block(T),
                workers, _np(gx), _np(gv0), _np(gi0), _np(ga0), _np(gbeta), _np(gthr),
            )
        return BackwardResult(gx, gv0, gi0, ga0, gbeta if want_beta else None,
                              gthr if want_thr else None)


ENGINE = NumbaEngine()
"""The numba engine instance (stateless)."""
