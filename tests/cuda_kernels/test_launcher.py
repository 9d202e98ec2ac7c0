"""The CuPy launcher, checked without a GPU as far as it goes: the arguments it passes match
the kernels' signatures in type and order, and the name expressions name instantiations that
exist. (Compilation by NVRTC and the launch itself need a GPU: see test_cuda_backend.py.)"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from snn.cuda_kernels import SOURCE_DIR
from snn.cuda_kernels.fused import FusedSpec, surrogate_constants
from snn.cuda_kernels.ops import backward_args, forward_args, kernel_names


class Ptr:
    def __init__(self, t: torch.Tensor):
        self.dtype = t.dtype


def _signature(kernel: str) -> list[str]:
    text = (SOURCE_DIR / "neuron_kernels.cu").read_text()
    m = re.search(rf"\b{kernel}\((.*?)\)\s*{{", text, re.S)
    assert m, f"{kernel} not found"
    return [" ".join(p.split()[:-1]) for p in m.group(1).replace("\n", " ").split(",")]


def _check(params: list[str], args: tuple, dtype: torch.dtype) -> None:
    acc = np.float64 if dtype == torch.float64 else np.float32
    acc_t = torch.float64 if dtype == torch.float64 else torch.float32
    assert len(params) == len(args)
    for ctype, arg in zip(params, args):
        if ctype.endswith("acc*"):
            assert isinstance(arg, Ptr) and arg.dtype == acc_t, ctype
        elif ctype.endswith("*"):
            assert isinstance(arg, Ptr) and arg.dtype == dtype, ctype
        elif ctype == "long long":
            assert isinstance(arg, np.int64), ctype
        elif ctype == "int":
            assert isinstance(arg, np.int32), ctype
        else:
            assert ctype == "typename snn::io<S>::acc" and isinstance(arg, acc), ctype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_arguments_match_kernel_signatures(dtype):
    spec = FusedSpec(kind=3, reset=1, surrogate_id=7, sg=surrogate_constants(7, 2.0),
                     v_reset=-0.1, beta_adapt=0.9, c_adapt=0.1, adapt_scale=0.3)
    acc_t = torch.float64 if dtype == torch.float64 else torch.float32
    T, N = 5, 7
    x = torch.zeros(T, N, dtype=dtype)
    n = torch.zeros(N, dtype=dtype)
    p = torch.zeros(1, dtype=acc_t)
    outs = {k: x for k in ("spikes", "h", "a_prev", "v_rec")} | {k: n for k in ("vT", "iT", "aT")}
    args = forward_args(spec, x, n, n, n, p, p, p, outs, True, wrap=Ptr)
    _check(_signature("snn_forward"), args, dtype)
    ins = {k: x for k in ("h", "a_prev", "x", "gs", "gv")} | {
        k: n for k in ("v0", "gvT", "giT", "gaT")} | {k: p for k in ("beta", "c", "thr")}
    bouts = {"gx": x, "gv0": n, "gi0": n, "ga0": n,
             "gbeta": torch.zeros(N, dtype=acc_t), "gthr": torch.zeros(N, dtype=acc_t)}
    args = backward_args(spec, ins, bouts, T, N, (0, 2), True, True, wrap=Ptr)
    _check(_signature("snn_backward"), args, dtype)


def test_name_expressions():
    spec = FusedSpec(kind=2, reset=0, detach_reset=True, surrogate_id=4)
    assert kernel_names(spec, torch.bfloat16) == (
        "snn_forward<snn::bf16_t, 2, 0>", "snn_backward<snn::bf16_t, 2, 0, 1, 4>")
    assert kernel_names(spec, torch.float32)[0] == "snn_forward<float, 2, 0>"


def test_cupy_imports_and_the_backend_reports_unavailable_without_gpu():
    pytest.importorskip("cupy", reason="cupy is not installed (pip install 'snn[cuda12]')")
    from snn.backends import BACKENDS

    assert BACKENDS["cupy"].is_available() == torch.cuda.is_available()


def test_bytes_kept_per_step():
    from snn.cuda_kernels.fused import KIND_ALIF, KIND_LI, KIND_LIF, bytes_kept_per_step

    assert bytes_kept_per_step(FusedSpec(kind=KIND_LIF), torch.float16) == 2
    assert bytes_kept_per_step(FusedSpec(kind=KIND_LIF), torch.float32) == 4
    assert bytes_kept_per_step(FusedSpec(kind=KIND_ALIF), torch.bfloat16) == 4
    assert bytes_kept_per_step(FusedSpec(kind=KIND_LI), torch.float32) == 0
    spec = FusedSpec(kind=KIND_LIF, decay_input=True)
    assert bytes_kept_per_step(spec, torch.float32, learn_decay=True) == 8
    assert bytes_kept_per_step(spec, torch.float32, recompute=True) == 4
