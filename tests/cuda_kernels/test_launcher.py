"""The CuPy launcher without a GPU: its argument records have exactly the layout of the
kernels' argument structs (both come from ``kernel_args.h``; the offsets are checked against
the compiled struct), and the name expressions name instantiations that exist."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch

from snn.cuda_kernels import SOURCE_DIR
from snn.cuda_kernels.ops import backward_args, forward_args, kernel_names
from snn.fused import args as kargs
from snn.fused.autograd import FusedSpec, bytes_kept_per_step
from snn.fused.description import KIND_ALIF, KIND_LI, KIND_LIF
from snn.surrogate import Erf


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("double", [False, True])
def test_records_match_the_compiled_structs(host_lib, direction, double):
    acc = np.dtype(np.float64 if double else np.float32)
    dtype = kargs.record_dtype(direction, acc)
    n = len(kargs.fields(direction))
    out = (ctypes.c_longlong * (n + 1))()
    written = host_lib.snn_host_layout(0 if direction == "forward" else 1, int(double), out)
    assert written == n + 1
    offsets = [dtype.fields[name][1] for _, name in kargs.fields(direction)]
    assert list(out)[:n] == offsets
    assert out[n] == dtype.itemsize


def test_every_declared_field_is_used_by_the_kernels():
    """A field declared in kernel_args.h but read nowhere is dead weight (or a typo)."""
    text = (SOURCE_DIR / "neuron.cuh").read_text()
    for direction in ("forward", "backward"):
        for _, name in kargs.fields(direction):
            assert f"b.{name}" in text, f"{direction} argument {name} is never read"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_builders_fill_every_field(dtype):
    spec = FusedSpec(kind=KIND_ALIF, reset=1, surrogate_id=7, sg=Erf(2.0).kernel_constants(),
                     v_reset=-0.1, beta_adapt=0.9, c_adapt=0.1, adapt_scale=0.3, levels=4.0)
    acc_t = torch.float64 if dtype == torch.float64 else torch.float32
    T, N = 5, 7
    x = torch.zeros(T, N, dtype=dtype)
    n = torch.zeros(N, dtype=dtype)
    p = torch.zeros(1, dtype=acc_t)
    outs = {k: x for k in ("spikes", "h", "a_prev", "v_rec")} | {k: n for k in ("vT", "iT", "aT")}
    rec = forward_args(spec, x, n, n, n, p, p, p, outs, True)
    assert rec["T"] == T and rec["N"] == N and rec["reset"] == 1 and rec["record"] == 1
    assert rec["x"] == x.data_ptr() and rec["thr"] == p.data_ptr()
    assert rec["levels"] == 4.0 and rec.dtype["v_reset"] == kargs.compute_dtype(dtype)
    ins = {k: x for k in ("h", "a_prev", "x", "gs", "gv")} | {
        k: n for k in ("v0", "gvT", "giT", "gaT")} | {k: p for k in ("beta", "c", "thr")}
    bouts = {"gx": x, "gv0": n, "gi0": n, "ga0": n,
             "gbeta": torch.zeros(N, dtype=acc_t), "gthr": torch.zeros(N, dtype=acc_t)}
    rec = backward_args(spec, dtype, ins, bouts, T, N, (0, 2), True, True)
    assert rec["sid"] == 7 and rec["gv_mode"] == 2 and rec["want_thr"] == 1
    assert np.isclose(rec["k0"], 2.0 / np.sqrt(2 * np.pi))
    with pytest.raises(KeyError, match="missing"):
        kargs.build("forward", dtype, {"x": x})


def test_name_expressions():
    spec = FusedSpec(kind=2, reset=0, detach_reset=True, surrogate_id=4)
    assert kernel_names(spec, torch.bfloat16) == (
        "snn_forward<snn::bf16_t, 2>", "snn_backward<snn::bf16_t, 2>")
    assert kernel_names(spec, torch.float32)[0] == "snn_forward<float, 2>"


def test_cupy_imports_and_the_backend_reports_unavailable_without_gpu():
    pytest.importorskip("cupy", reason="cupy is not installed (pip install 'snn[cuda12]')")
    from snn.backends import BACKENDS

    assert BACKENDS["cupy"].is_available() == torch.cuda.is_available()


def test_bytes_kept_per_step():
    assert bytes_kept_per_step(FusedSpec(kind=KIND_LIF), torch.float16) == 2
    assert bytes_kept_per_step(FusedSpec(kind=KIND_LIF), torch.float32) == 4
    assert bytes_kept_per_step(FusedSpec(kind=KIND_ALIF), torch.bfloat16) == 4
    assert bytes_kept_per_step(FusedSpec(kind=KIND_LI), torch.float32) == 0
    spec = FusedSpec(kind=KIND_LIF, decay_input=True)
    assert bytes_kept_per_step(spec, torch.float32, learn_decay=True) == 8
    assert bytes_kept_per_step(spec, torch.float32, recompute=True) == 4
