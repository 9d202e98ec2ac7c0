"""CuPy launcher of the fused CUDA kernels and the ``"cupy"`` backend entry points.

The kernels of ``neuron_kernels.cu`` are templates; the instantiation a run needs (storage
dtype, neuron family, reset mode, detach_reset, surrogate) is compiled with NVRTC on first use
and cached per configuration and device (CuPy also keeps compiled modules on disk). Launches go
to PyTorch's current stream of the tensor's device, so they order correctly with the
surrounding PyTorch work without synchronising.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snn.cuda_kernels import SOURCE_DIR
from snn.cuda_kernels.fused import KIND_ALIF, KIND_CUBA, KIND_LI, FusedSpec, fused_sequence
from snn.functional._common import SequenceOutput

__all__ = [
    "ENGINE",
    "THREADS",
    "alif_sequence",
    "backward_args",
    "cuba_lif_sequence",
    "forward_args",
    "if_sequence",
    "kernel_names",
    "li_sequence",
    "lif_sequence",
]

THREADS = 256
"""Threads per block (one neuron per thread); matches ``__launch_bounds__`` in the source."""

_STORAGE = {
    torch.float32: ("float", np.float32),
    torch.float64: ("double", np.float64),
    torch.float16: ("snn::half_t", np.float32),
    torch.bfloat16: ("snn::bf16_t", np.float32),
}
"""torch dtype -> (C++ storage type, compute scalar type)."""

COMPILE_OPTIONS = ("-std=c++14", "--fmad=false", f"-I{SOURCE_DIR}")
"""NVRTC options: no contraction into fused multiply-adds (the reference rounds each op)."""


def kernel_names(spec: FusedSpec, dtype: torch.dtype) -> tuple[str, str]:
    """NVRTC name expressions of the forward and backward instantiations for a run."""
    ctype = _STORAGE[dtype][0]
    fwd = f"snn_forward<{ctype}, {spec.kind}, {spec.reset}>"
    bwd = (
        f"snn_backward<{ctype}, {spec.kind}, {spec.reset}, {int(spec.detach_reset)}, "
        f"{spec.surrogate_id}>"
    )
    return fwd, bwd


@functools.lru_cache(maxsize=256)
def _kernels(fwd: str, bwd: str, device_index: int) -> tuple[Any, Any]:
    import cupy

    source = (SOURCE_DIR / "neuron_kernels.cu").read_text()
    with cupy.cuda.Device(device_index):
        module = cupy.RawModule(
            code=source, options=COMPILE_OPTIONS, name_expressions=(fwd, bwd)
        )
        return module.get_function(fwd), module.get_function(bwd)


def _ptr(t: Tensor) -> np.uint64:
    """The device address of ``t`` as a kernel argument (8 bytes, passed by value).

    Raw addresses avoid wrapping each tensor in a CuPy array: no ``__cuda_array_interface__``
    stream synchronisation, no per-array overhead, and bfloat16 (which CuPy lacks) needs no
    special case. The kernels index the memory as contiguous ``[T, N]`` / ``[N]``."""
    return np.uint64(t.data_ptr())


def forward_args(spec: FusedSpec, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor,
                 beta: Tensor, c: Tensor, thr: Tensor, outs: dict[str, Tensor],
                 record: bool, wrap: Any = _ptr) -> tuple[Any, ...]:
    """Arguments of ``snn_forward`` in the order of its signature (tensors through ``wrap``)."""
    acc = _STORAGE[x.dtype][1]
    T, N = x.shape
    return (
        *(wrap(t) for t in (x, v0, i0, a0, beta, c, thr)),
        *(wrap(outs[k]) for k in ("spikes", "h", "a_prev", "v_rec", "vT", "iT", "aT")),
        np.int64(T), np.int64(N),
        np.int32(beta.numel() > 1), np.int32(thr.numel() > 1), np.int32(bool(record)),
        acc(spec.v_reset), acc(spec.alpha), acc(spec.beta_adapt), acc(spec.c_adapt),
        acc(spec.adapt_scale),
    )


def backward_args(spec: FusedSpec, ins: dict[str, Tensor], outs: dict[str, Tensor],
                  T: int, N: int, modes: tuple[int, int], want_beta: bool, want_thr: bool,
                  wrap: Any = _ptr) -> tuple[Any, ...]:
    """Arguments of ``snn_backward`` in the order of its signature."""
    acc = _STORAGE[ins["h"].dtype][1]
    k0, k1, k2 = spec.sg
    return (
        *(wrap(ins[k]) for k in ("h", "a_prev", "x", "v0", "beta", "c", "thr", "gs", "gv",
                                 "gvT", "giT", "gaT")),
        *(wrap(outs[k]) for k in ("gx", "gv0", "gi0", "ga0")),
        wrap(outs["gbeta"]), wrap(outs["gthr"]),
        np.int64(T), np.int64(N),
        np.int32(ins["beta"].numel() > 1), np.int32(ins["thr"].numel() > 1),
        np.int32(modes[0]), np.int32(modes[1]), np.int32(bool(want_beta)),
        np.int32(bool(spec.decay_input)), np.int32(bool(want_thr)),
        acc(spec.v_reset), acc(spec.alpha), acc(spec.beta_adapt), acc(spec.c_adapt),
        acc(spec.adapt_scale), acc(k0), acc(k1), acc(k2),
    )


def _grad_mode(g: Tensor | None, dummy: Tensor) -> tuple[Tensor, int]:
    """A gradient as the kernel takes it: full ``[T, N]`` (0), one value (1) or none (2)."""
    if g is None:
        return dummy, 2
    if all(s == 0 for s in g.stride()):
        return g.reshape(-1)[:1].contiguous(), 1
    return g.contiguous(), 0


def _launch(kernel: Any, device: torch.device, n: int, args: tuple[Any, ...]) -> None:
    import cupy

    if n == 0:  # an empty batch: nothing to launch
        return
    blocks = (n + THREADS - 1) // THREADS
    stream = torch.cuda.current_stream(device)
    with cupy.cuda.Device(device.index), cupy.cuda.ExternalStream(stream.cuda_stream):
        kernel((blocks,), (THREADS,), args)


class CupyEngine:
    """Fused forward/backward over ``[T, N]`` CUDA tensors (float32/64, float16, bfloat16)."""

    name = "cupy"
    dtypes = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
    recompute = False

    def forward(self, spec: FusedSpec, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor,
                beta: Tensor, c: Tensor, thr: Tensor, record: bool) -> tuple[Tensor | None, ...]:
        N = x.shape[1]
        dummy = x.new_empty(1)
        spikes = torch.empty_like(x)
        outs = {
            "spikes": spikes,
            "h": spikes if spec.kind == KIND_LI else torch.empty_like(x),
            "a_prev": torch.empty_like(x) if spec.kind == KIND_ALIF else dummy,
            "v_rec": torch.empty_like(x) if record else dummy,
            "vT": x.new_empty(N),
            "iT": x.new_empty(N) if spec.kind == KIND_CUBA else dummy,
            "aT": x.new_empty(N) if spec.kind == KIND_ALIF else dummy,
        }
        fwd, _ = _kernels(*kernel_names(spec, x.dtype), x.device.index or 0)
        _launch(fwd, x.device, N, forward_args(spec, x, v0, i0, a0, beta, c, thr, outs, record))
        return (
            spikes,
            outs["h"],
            outs["a_prev"] if spec.kind == KIND_ALIF else None,
            outs["v_rec"] if record else None,
            outs["vT"],
            outs["iT"] if spec.kind == KIND_CUBA else None,
            outs["aT"] if spec.kind == KIND_ALIF else None,
        )

    def backward(self, spec: FusedSpec, saved: dict[str, Tensor | None], g_s: Tensor | None,
                 g_vrec: Tensor | None, g_vt: Tensor, g_it: Tensor, g_at: Tensor,
                 like: Tensor, x_shape: torch.Size, want_beta: bool,
                 want_thr: bool) -> tuple[Tensor | None, ...]:
        T, N = x_shape
        dummy = like.new_zeros(1)
        gs, gs_mode = _grad_mode(g_s, dummy)
        gv, gv_mode = _grad_mode(g_vrec, dummy)
        beta = saved["beta"]
        acc_dtype = beta.dtype
        ins = {k: saved.get(k) if saved.get(k) is not None else dummy
               for k in ("h", "a_prev", "x", "v0")}
        ins.update(beta=beta, c=saved["c"], thr=saved["thr"], gs=gs, gv=gv, gvT=g_vt,
                   giT=g_it, gaT=g_at)
        outs = {
            "gx": like.new_empty(T, N),
            "gv0": like.new_empty(N),
            "gi0": like.new_zeros(N),
            "ga0": like.new_zeros(N),
            "gbeta": torch.zeros(N, dtype=acc_dtype, device=beta.device),
            "gthr": torch.zeros(N, dtype=acc_dtype, device=beta.device),
        }
        _, bwd = _kernels(*kernel_names(spec, like.dtype), beta.device.index or 0)
        _launch(bwd, beta.device, N,
                backward_args(spec, ins, outs, T, N, (gs_mode, gv_mode), want_beta, want_thr))
        return (
            outs["gx"], outs["gv0"], outs["gi0"], outs["ga0"],
            outs["gbeta"] if want_beta else None,
            outs["gthr"] if want_thr else None,
        )


ENGINE = CupyEngine()
"""The CuPy engine instance (stateless; compiled kernels are cached per configuration)."""


def _check_device(x: Tensor) -> None:
    from snn.backends import UnsupportedConfiguration

    if not isinstance(x, Tensor) or x.device.type != "cuda":
        raise UnsupportedConfiguration("the cupy backend runs on CUDA tensors")


def if_sequence(x: Tensor, state: Any = None, *, record: bool = False, **params: Any
                ) -> SequenceOutput:
    """Fused CUDA :func:`snn.functional.if_sequence` (``x``: ``[T, B, ...]``)."""
    _check_device(x)
    return fused_sequence(ENGINE, "if", x, state, record, params)


def lif_sequence(x: Tensor, state: Any = None, *, record: bool = False, **params: Any
                 ) -> SequenceOutput:
    """Fused CUDA :func:`snn.functional.lif_sequence` (``x``: ``[T, B, ...]``)."""
    _check_device(x)
    return fused_sequence(ENGINE, "lif", x, state, record, params)


def li_sequence(x: Tensor, state: Any = None, *, record: bool = False, **params: Any
                ) -> SequenceOutput:
    """Fused CUDA :func:`snn.functional.li_sequence` (``x``: ``[T, B, ...]``)."""
    _check_device(x)
    return fused_sequence(ENGINE, "li", x, state, record, params)


def cuba_lif_sequence(x: Tensor, state: Any = None, *, record: bool = False, **params: Any
                      ) -> SequenceOutput:
    """Fused CUDA :func:`snn.functional.cuba_lif_sequence` (``x``: ``[T, B, ...]``)."""
    _check_device(x)
    return fused_sequence(ENGINE, "cuba_lif", x, state, record, params)


def alif_sequence(x: Tensor, state: Any = None, *, record: bool = False, **params: Any
                  ) -> SequenceOutput:
    """Fused CUDA :func:`snn.functional.alif_sequence` (``x``: ``[T, B, ...]``)."""
    _check_device(x)
    return fused_sequence(ENGINE, "alif", x, state, record, params)
