"""The CPU engine (numba) and the backend-table entry points of the ``"numba"`` backend.

Each ``*_sequence`` function here has the signature of its reference in
:mod:`snn.functional` and is registered in :data:`snn.backends.IMPLEMENTATIONS`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snn.cuda_kernels.fused import KIND_ALIF, KIND_CUBA, FusedSpec, fused_sequence
from snn.functional._common import SequenceOutput

__all__ = [
    "ENGINE",
    "alif_sequence",
    "cuba_lif_sequence",
    "if_sequence",
    "li_sequence",
    "lif_sequence",
]


def _np(t: Tensor) -> np.ndarray:
    return t.detach().numpy()


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
    return p


SERIAL_WORK = 1 << 22
"""Below this many neuron-steps a call runs on the calling thread: waking a thread pool costs
more than the work (milliseconds on a busy machine)."""


@contextlib.contextmanager
def _threads_for(T: int, N: int) -> Iterator[None]:
    """Use one thread for small problems (numba's thread count is thread-local)."""
    import numba

    from snn.cpu_kernels import loops

    previous = numba.get_num_threads()
    serial = T * N < SERIAL_WORK or loops.backward_block(T) >= N
    if serial:
        numba.set_num_threads(1)
    try:
        yield
    finally:
        if serial:
            numba.set_num_threads(previous)


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


class NumbaEngine:
    """Fused forward/backward over ``[T, N]`` on CPU tensors (float32, float64). Backward
    recomputes the forward recurrence from the kept input (see :mod:`snn.cpu_kernels.loops`)."""

    name = "numba"
    dtypes = (torch.float32, torch.float64)
    recompute = True

    def forward(self, spec: FusedSpec, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor,
                beta: Tensor, c: Tensor, thr: Tensor, record: bool) -> tuple[Tensor | None, ...]:
        from snn.cpu_kernels import loops

        N = x.shape[1]
        spikes = torch.empty_like(x)
        v_rec = torch.empty_like(x) if record else None
        v_t, i_t, a_t = x.new_empty(N), x.new_empty(N), x.new_empty(N)
        with _threads_for(*x.shape):
            loops.forward(
                _np(x), _np(v0), _np(i0), _np(a0), _np(beta), _np(c), _np(thr),
                _constants(spec, x.dtype), spec.kind, spec.reset, bool(record), _workers(),
                _np(spikes),
                _np(v_rec if v_rec is not None else x.new_empty(1, 1)),
                _np(v_t), _np(i_t), _np(a_t),
            )
        return (
            spikes, None, None, v_rec, v_t,
            i_t if spec.kind == KIND_CUBA else None,
            a_t if spec.kind == KIND_ALIF else None,
        )

    def backward(self, spec: FusedSpec, saved: dict[str, Tensor], g_s: Tensor | None,
                 g_vrec: Tensor | None, g_vt: Tensor, g_it: Tensor, g_at: Tensor,
                 like: Tensor, x_shape: torch.Size, want_beta: bool,
                 want_thr: bool) -> tuple[Tensor | None, ...]:
        from snn.cpu_kernels import loops

        T, N = x_shape
        gx = like.new_empty(T, N)
        dummy2 = _np(like.new_zeros(1, 1))
        gs, gs_mode = _grad_mode(g_s, dummy2)
        gv, gv_mode = _grad_mode(g_vrec, dummy2)
        gv0, gi0, ga0 = like.new_empty(N), like.new_empty(N), like.new_empty(N)
        gbeta = torch.empty(N, dtype=torch.float64)
        gthr = torch.empty(N, dtype=torch.float64)
        with _threads_for(T, N):
            loops.backward(
                _np(saved["x"]), _np(saved["v0"]), _np(saved["i0"]), _np(saved["a0"]),
                _np(saved["beta"]), _np(saved["c"]), _np(saved["thr"]),
                _constants(spec, like.dtype),
                spec.kind, spec.reset, spec.detach_reset, spec.surrogate_id,
                gs, gs_mode, gv, gv_mode, _np(g_vt), _np(g_it), _np(g_at),
                bool(want_beta), spec.decay_input, bool(want_thr), loops.backward_block(T),
                _workers(), _np(gx), _np(gv0), _np(gi0), _np(ga0), _np(gbeta), _np(gthr),
            )
        return gx, gv0, gi0, ga0, gbeta if want_beta else None, gthr if want_thr else None


ENGINE = NumbaEngine()
"""The numba engine instance (stateless)."""


def if_sequence(x: Tensor, state: Any = None, *, record: bool = False, **params: Any
                ) -> SequenceOutput:
    """Fused CPU :func:`snn.functional.if_sequence` (``x``: ``[T, B, ...]``)."""
    return fused_sequence(ENGINE, "if", x, state, record, params)


def lif_sequence(x: Tensor, state: Any = None, *, record: bool = False, **params: Any
                 ) -> SequenceOutput:
    """Fused CPU :func:`snn.functional.lif_sequence` (``x``: ``[T, B, ...]``)."""
    return fused_sequence(ENGINE, "lif", x, state, record, params)


def li_sequence(x: Tensor, state: Any = None, *, record: bool = False, **params: Any
                ) -> SequenceOutput:
    """Fused CPU :func:`snn.functional.li_sequence` (``x``: ``[T, B, ...]``)."""
    return fused_sequence(ENGINE, "li", x, state, record, params)


def cuba_lif_sequence(x: Tensor, state: Any = None, *, record: bool = False, **params: Any
                      ) -> SequenceOutput:
    """Fused CPU :func:`snn.functional.cuba_lif_sequence` (``x``: ``[T, B, ...]``)."""
    return fused_sequence(ENGINE, "cuba_lif", x, state, record, params)


def alif_sequence(x: Tensor, state: Any = None, *, record: bool = False, **params: Any
                  ) -> SequenceOutput:
    """Fused CPU :func:`snn.functional.alif_sequence` (``x``: ``[T, B, ...]``)."""
    return fused_sequence(ENGINE, "alif", x, state, record, params)
