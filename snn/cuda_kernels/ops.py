"""CuPy launcher of the fused CUDA kernels: the engine of the ``"cupy"`` backend.

The kernels of ``neuron_kernels.cu`` are templates over the storage dtype and the integration
kind; the instantiation a run needs is compiled with NVRTC on first use and cached per
configuration and device (CuPy also keeps compiled modules on disk). Each kernel takes one
argument struct, built by :func:`forward_args` / :func:`backward_args` from the declaration in
``kernel_args.h`` (the host-emulated tests launch the same entry points through the same
builders). Launches go to PyTorch's current stream of the tensor's device, so they order
correctly with the surrounding PyTorch work without synchronising.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snn.cuda_kernels import SOURCE_DIR
from snn.fused import args as kargs
from snn.fused.autograd import BackwardResult, ForwardResult, FusedSpec, Saved
from snn.fused.description import KIND_ALIF, KIND_CUBA, KIND_LI

__all__ = [
    "COMPILE_OPTIONS",
    "ENGINE",
    "STORAGE_TYPES",
    "THREADS",
    "CupyEngine",
    "backward_args",
    "forward_args",
    "grid",
    "kernel_names",
]

THREADS = 256
"""Threads per block (one neuron per thread); matches ``__launch_bounds__`` in the source."""

STORAGE_TYPES = {
    torch.float32: "float",
    torch.float64: "double",
    torch.float16: "snn::half_t",
    torch.bfloat16: "snn::bf16_t",
}
"""torch dtype -> C++ storage type of the kernels."""

COMPILE_OPTIONS = ("-std=c++14", "--fmad=false", f"-I{SOURCE_DIR}")
"""NVRTC options: no contraction into fused multiply-adds (the reference rounds each op)."""


def kernel_names(spec: FusedSpec, dtype: torch.dtype) -> tuple[str, str]:
    """NVRTC name expressions of the forward and backward instantiations for a run."""
    ctype = STORAGE_TYPES[dtype]
    return f"snn_forward<{ctype}, {spec.kind}>", f"snn_backward<{ctype}, {spec.kind}>"


def grid(n: int) -> tuple[int, int]:
    """``(blocks, threads)`` of a launch over ``n`` neurons (one thread per neuron)."""
    return (n + THREADS - 1) // THREADS, THREADS


def forward_args(spec: FusedSpec, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor,
                 beta: Tensor, c: Tensor, thr: Tensor, outs: dict[str, Tensor],
                 record: bool, address: Any = None) -> np.void:
    """The argument struct of ``snn_forward`` (``outs``: spikes, h, a_prev, v_rec, vT, iT,
    aT; tensors through ``address``, by default ``data_ptr()``)."""
    T, N = x.shape
    values = {
        "x": x, "v0": v0, "i0": i0, "a0": a0, "beta": beta, "c": c, "thr": thr, **outs,
        "T": T, "N": N, "bs": int(beta.numel() > 1), "ts": int(thr.numel() > 1),
        "record": int(bool(record)), "reset": spec.reset, "fire": spec.fire,
        "v_reset": spec.v_reset, "alpha": spec.alpha, "rho": spec.beta_adapt,
        "c_rho": spec.c_adapt, "gamma": spec.adapt_scale, "levels": spec.levels,
    }
    return kargs.build("forward", x.dtype, values, address)


def backward_args(spec: FusedSpec, dtype: torch.dtype, ins: dict[str, Tensor],
                  outs: dict[str, Tensor], T: int, N: int, modes: tuple[int, int],
                  want_beta: bool, want_thr: bool, address: Any = None) -> np.void:
    """The argument struct of ``snn_backward`` (``ins``: h, a_prev, x, v0, beta, c, thr, gs,
    gv, gvT, giT, gaT; ``outs``: gx, gv0, gi0, ga0, gbeta, gthr)."""
    k0, k1, k2 = spec.sg
    values = {
        **ins, **outs, "T": T, "N": N, "bs": int(ins["beta"].numel() > 1),
        "ts": int(ins["thr"].numel() > 1), "reset": spec.reset, "fire": spec.fire,
        "detach": int(spec.detach_reset), "sid": spec.surrogate_id,
        "gs_mode": modes[0], "gv_mode": modes[1], "want_beta": int(bool(want_beta)),
        "decay_input": int(bool(spec.decay_input)), "want_thr": int(bool(want_thr)),
        "v_reset": spec.v_reset, "alpha": spec.alpha, "rho": spec.beta_adapt,
        "c_rho": spec.c_adapt, "gamma": spec.adapt_scale, "levels": spec.levels,
        "k0": k0, "k1": k1, "k2": k2,
    }
    return kargs.build("backward", dtype, values, address)


def grad_mode(g: Tensor | None, dummy: Tensor) -> tuple[Tensor, int]:
    """A gradient as the kernel takes it: full ``[T, N]`` (0), one value (1) or none (2)."""
    if g is None:
        return dummy, 2
    if all(s == 0 for s in g.stride()):
        return g.reshape(-1)[:1].contiguous(), 1
    return g.contiguous(), 0


def forward_buffers(spec: FusedSpec, x: Tensor, record: bool) -> dict[str, Tensor]:
    """The output buffers of a forward launch (a one-element dummy for what is absent)."""
    N = x.shape[1]
    dummy = x.new_empty(1)
    spikes = torch.empty_like(x)
    return {
        "spikes": spikes,
        "h": spikes if spec.kind == KIND_LI else torch.empty_like(x),
        "a_prev": torch.empty_like(x) if spec.kind == KIND_ALIF else dummy,
        "v_rec": torch.empty_like(x) if record else dummy,
        "vT": x.new_empty(N),
        "iT": x.new_empty(N) if spec.kind == KIND_CUBA else dummy,
        "aT": x.new_empty(N) if spec.kind == KIND_ALIF else dummy,
    }


def forward_result(spec: FusedSpec, outs: dict[str, Tensor], record: bool) -> ForwardResult:
    """The named result of a forward launch over ``outs`` (:func:`forward_buffers`)."""
    return ForwardResult(
        outs["spikes"],
        outs["v_rec"] if record else None,
        outs["vT"],
        outs["iT"] if spec.kind == KIND_CUBA else None,
        outs["aT"] if spec.kind == KIND_ALIF else None,
        None if spec.kind == KIND_LI else outs["h"],
        outs["a_prev"] if spec.kind == KIND_ALIF else None,
    )


def backward_buffers(saved: Saved, g_s: Tensor | None, g_vrec: Tensor | None, g_vt: Tensor,
                     g_it: Tensor, g_at: Tensor) -> tuple[dict[str, Tensor],
                                                          dict[str, Tensor], tuple[int, int]]:
    """Inputs, outputs and gradient modes of a backward launch."""
    like = g_vt
    ref = saved.h if saved.h is not None else saved.x
    if ref is None:
        ref = g_s if g_s is not None else g_vrec
    assert ref is not None
    T, N = ref.shape
    dummy = like.new_zeros(1)
    gs, gs_mode = grad_mode(g_s, dummy)
    gv, gv_mode = grad_mode(g_vrec, dummy)
    ins = {k: getattr(saved, k) if getattr(saved, k) is not None else dummy
           for k in ("h", "a_prev", "x", "v0")}
    ins.update(beta=saved.beta, c=saved.c, thr=saved.thr, gs=gs, gv=gv, gvT=g_vt, giT=g_it,
               gaT=g_at)
    acc = saved.beta.dtype
    outs = {
        "gx": like.new_empty(T, N),
        "gv0": like.new_empty(N),
        "gi0": like.new_zeros(N),
        "ga0": like.new_zeros(N),
        "gbeta": torch.zeros(N, dtype=acc, device=like.device),
        "gthr": torch.zeros(N, dtype=acc, device=like.device),
    }
    return ins, outs, (gs_mode, gv_mode)


def backward_result(outs: dict[str, Tensor], want_beta: bool, want_thr: bool
                    ) -> BackwardResult:
    """The named result of a backward launch over ``outs``."""
    return BackwardResult(outs["gx"], outs["gv0"], outs["gi0"], outs["ga0"],
                          outs["gbeta"] if want_beta else None,
                          outs["gthr"] if want_thr else None)


@functools.lru_cache(maxsize=256)
def _kernels(fwd: str, bwd: str, device_index: int) -> tuple[Any, Any]:
    import cupy

    source = (SOURCE_DIR / "neuron_kernels.cu").read_text()
    with cupy.cuda.Device(device_index):
        module = cupy.RawModule(
            code=source, options=COMPILE_OPTIONS, name_expressions=(fwd, bwd)
        )
        return module.get_function(fwd), module.get_function(bwd)


def _launch(kernel: Any, device: torch.device, n: int, args: np.void) -> None:
    import cupy

    if n == 0:  # an empty batch: nothing to launch
        return
    blocks, threads = grid(n)
    stream = torch.cuda.current_stream(device)
    with cupy.cuda.Device(device.index), cupy.cuda.ExternalStream(stream.cuda_stream):
        kernel((blocks,), (threads,), (args,))


class CupyEngine:
    """Fused forward/backward over ``[T, N]`` CUDA tensors (float32/64, float16, bfloat16)."""

    name = "cupy"
    dtypes = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
    devices = ("cuda",)
    recompute = False

    def forward(self, spec: FusedSpec, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor,
                beta: Tensor, c: Tensor, thr: Tensor, record: bool) -> ForwardResult:
        outs = forward_buffers(spec, x, record)
        fwd, _ = _kernels(*kernel_names(spec, x.dtype), x.device.index or 0)
        _launch(fwd, x.device, x.shape[1],
                forward_args(spec, x, v0, i0, a0, beta, c, thr, outs, record))
        return forward_result(spec, outs, record)

    def backward(self, spec: FusedSpec, saved: Saved, g_s: Tensor | None,
                 g_vrec: Tensor | None, g_vt: Tensor, g_it: Tensor, g_at: Tensor,
                 want_beta: bool, want_thr: bool) -> BackwardResult:
        ins, outs, modes = backward_buffers(saved, g_s, g_vrec, g_vt, g_it, g_at)
        T, N = outs["gx"].shape
        _, bwd = _kernels(*kernel_names(spec, g_vt.dtype), g_vt.device.index or 0)
        _launch(bwd, g_vt.device, N,
                backward_args(spec, g_vt.dtype, ins, outs, T, N, modes, want_beta, want_thr))
        return backward_result(outs, want_beta, want_thr)


ENGINE = CupyEngine()
"""The CuPy engine instance (stateless; compiled kernels are cached per configuration)."""
