"""Fixtures of the CUDA-kernel tests: the host-compiled harness of ``neuron.cuh``."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from snn.cuda_kernels import SOURCE_DIR
from snn.cuda_kernels.fused import KIND_ALIF, KIND_CUBA, KIND_LI, FusedSpec

HARNESS = Path(__file__).with_name("host_harness.cpp")
DTYPE_CODES = {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3}


def _compiler() -> str:
    for name in ("g++", "c++", "clang++"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no C++ compiler (g++/c++/clang++) on PATH to build the host harness")


@pytest.fixture(scope="session")
def harness_lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    """``neuron.cuh`` compiled for the host (warnings are errors, no FMA contraction)."""
    out = tmp_path_factory.mktemp("harness") / "libsnn_harness.so"
    cmd = [
        _compiler(), "-O2", "-std=c++14", "-shared", "-fPIC", "-ffp-contract=off",
        "-Wall", "-Wextra", "-Werror", f"-I{SOURCE_DIR}", "-o", str(out), str(HARNESS),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"host harness failed to compile:\n{proc.stderr}"
    lib = ctypes.CDLL(str(out))
    lib.snn_host_forward.restype = ctypes.c_int
    lib.snn_host_backward.restype = ctypes.c_int
    lib.snn_host_float_to_half.restype = ctypes.c_ushort
    lib.snn_host_float_to_half.argtypes = [ctypes.c_float]
    lib.snn_host_half_to_float.restype = ctypes.c_float
    lib.snn_host_half_to_float.argtypes = [ctypes.c_ushort]
    lib.snn_host_float_to_bf16.restype = ctypes.c_ushort
    lib.snn_host_float_to_bf16.argtypes = [ctypes.c_float]
    return lib


def _p(t: Tensor) -> ctypes.c_void_p:
    assert t.is_contiguous()
    return ctypes.c_void_p(t.data_ptr())


class HostEngine:
    """The fused engine protocol run by the host harness: the CUDA kernels' per-neuron code,
    on the CPU, behind the same autograd plumbing the CuPy engine uses."""

    name = "host-harness"
    dtypes = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
    recompute = False

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        self.keep: list[Tensor] = []

    def forward(self, spec: FusedSpec, x, v0, i0, a0, beta, c, thr, record):
        T, N = x.shape
        spikes = torch.empty_like(x)
        h = spikes if spec.kind == KIND_LI else torch.empty_like(x)
        a_prev = torch.empty_like(x) if spec.kind == KIND_ALIF else None
        v_rec = torch.empty_like(x) if record else None
        v_t, i_t, a_t = x.new_empty(N), x.new_empty(N), x.new_empty(N)
        dummy = x.new_zeros(1)
        flags = (ctypes.c_int * 12)(
            spec.kind, spec.reset, int(beta.numel() > 1), int(thr.numel() > 1), int(record),
            0, 0, 0, 0, 0, 0, 0,
        )
        consts = (ctypes.c_double * 8)(
            spec.v_reset, spec.alpha, spec.beta_adapt, spec.c_adapt, spec.adapt_scale, 0, 0, 0
        )
        rc = self.lib.snn_host_forward(
            DTYPE_CODES[x.dtype], _p(x), _p(v0), _p(i0), _p(a0), _p(beta), _p(c), _p(thr),
            _p(spikes), _p(h), _p(a_prev if a_prev is not None else dummy),
            _p(v_rec if v_rec is not None else dummy), _p(v_t), _p(i_t), _p(a_t),
            ctypes.c_longlong(T), ctypes.c_longlong(N), flags, consts,
        )
        assert rc == 0
        return (spikes, h, a_prev, v_rec, v_t, i_t if spec.kind == KIND_CUBA else None,
                a_t if spec.kind == KIND_ALIF else None)

    def backward(self, spec: FusedSpec, saved, g_s, g_vrec, g_vt, g_it, g_at, like, x_shape,
                 want_beta, want_thr):
        T, N = x_shape
        beta, c, thr = saved["beta"], saved["c"], saved["thr"]
        dummy = like.new_zeros(1)

        def mode(g):
            if g is None:
                return dummy, 2
            if all(s == 0 for s in g.stride()):
                return g.reshape(-1)[:1].contiguous(), 1
            return g.contiguous(), 0

        gs, gs_mode = mode(g_s)
        gv, gv_mode = mode(g_vrec)
        acc = beta.dtype
        outs = [like.new_empty(T, N), like.new_empty(N), like.new_zeros(N), like.new_zeros(N),
                torch.zeros(N, dtype=acc), torch.zeros(N, dtype=acc)]
        ins = [saved.get("h"), saved.get("a_prev"), saved.get("x"), saved.get("v0"), beta, c,
               thr, gs, gv, g_vt, g_it, g_at]
        ins = [t if t is not None else dummy for t in ins]
        in_ptrs = (ctypes.c_void_p * 12)(*(t.data_ptr() for t in ins))
        out_ptrs = (ctypes.c_void_p * 6)(*(t.data_ptr() for t in outs))
        flags = (ctypes.c_int * 12)(
            spec.kind, spec.reset, int(beta.numel() > 1), int(thr.numel() > 1), 0,
            int(spec.detach_reset), spec.surrogate_id, gs_mode, gv_mode, int(want_beta),
            int(spec.decay_input), int(want_thr),
        )
        consts = (ctypes.c_double * 8)(
            spec.v_reset, spec.alpha, spec.beta_adapt, spec.c_adapt, spec.adapt_scale, *spec.sg
        )
        rc = self.lib.snn_host_backward(
            DTYPE_CODES[like.dtype], in_ptrs, out_ptrs, ctypes.c_longlong(T),
            ctypes.c_longlong(N), flags, consts,
        )
        assert rc == 0
        gx, gv0, gi0, ga0, gbeta, gthr = outs
        return gx, gv0, gi0, ga0, gbeta if want_beta else None, gthr if want_thr else None


@pytest.fixture(scope="session")
def host_engine(harness_lib: ctypes.CDLL) -> HostEngine:
    return HostEngine(harness_lib)


def as_bits(t: Tensor) -> np.ndarray:
    return t.view(torch.int16).numpy().view(np.uint16)
