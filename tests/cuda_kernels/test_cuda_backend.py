"""The CuPy backend on a GPU against the PyTorch reference on the same GPU."""

from __future__ import annotations

import pytest
import torch
from kernel_cases import (
    CASE_IDS,
    CASES,
    compare_with_reference,
    make_input,
    make_state,
    reference,
)

from snn.backends import resolve

pytestmark = pytest.mark.cuda

HALF_TOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
"""Membrane error relative to its scale for neurons whose spike trains agree with float32."""


def _impl(neuron):
    pytest.importorskip("cupy", reason="the cupy backend needs cupy (pip install 'snn[cuda12]')")
    from kernel_cases import fused_impl

    return fused_impl("cupy", neuron)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_every_configuration_matches_reference(case):
    neuron, params = case
    x = make_input((19, 3, 5), params, device="cuda").requires_grad_()
    compare_with_reference(_impl(neuron), neuron, params, x, make_state(neuron, x))


@pytest.mark.parametrize("T", [1, 2, 37, 256, 1024])
def test_random_shapes_and_lengths(T):
    g = torch.Generator().manual_seed(T)
    shape = (T, *torch.randint(1, 9, (int(torch.randint(1, 4, (1,), generator=g)),),
                               generator=g).tolist())
    for neuron, params in [CASES[0], CASES[-1], next(c for c in CASES if c[0] == "alif")]:
        x = make_input(shape, params, device="cuda").requires_grad_()
        compare_with_reference(_impl(neuron), neuron, params, x, None)


def test_non_contiguous_input():
    base = make_input((8, 40, 3), {}, device="cuda").requires_grad_()
    x = base.permute(1, 2, 0)  # [40, 3, 8]
    assert not x.is_contiguous()
    compare_with_reference(_impl("lif"), "lif", {"beta": 0.9, "surrogate": "sigmoid"}, x, None)


@pytest.mark.parametrize("decay_input", [False, True])
def test_parametric_decay_and_learnable_threshold(decay_input):
    beta = torch.tensor([0.6, 0.8, 0.95], device="cuda").requires_grad_()
    thr = torch.tensor(0.9, device="cuda").requires_grad_()
    params = {"beta": beta, "threshold": thr, "decay_input": decay_input, "reset": "hard"}
    x = make_input((50, 4, 3), {"decay_input": decay_input}, device="cuda").requires_grad_()
    compare_with_reference(_impl("lif"), "lif", params, x, make_state("lif", x),
                           extra=(beta, thr))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("neuron", ["lif", "cuba_lif", "alif", "li"])
def test_half_precision_within_documented_tolerance(dtype, neuron):
    params = next(p for n, p in CASES if n == neuron)
    x = make_input((64, 16, 64), params, dtype=dtype, device="cuda").requires_grad_()
    out = _impl(neuron)(x, None, record=True, **params)
    ref = reference(neuron)(x.detach().float(), None, record=True, **params)
    if neuron == "li":
        agree = torch.ones(x.shape[1:], dtype=torch.bool, device="cuda")
    else:
        agree = (out.spikes.float() == ref.spikes).all(dim=0)
    assert agree.float().mean() >= 0.8
    err = (out.v.float() - ref.v).abs()[:, agree].max()
    assert err <= HALF_TOL[dtype] * ref.v.abs().max()
    out.spikes.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad.float()).all()


def test_runs_on_the_current_stream():
    x = make_input((300, 64, 256), {}, device="cuda")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        out = _impl("lif")(x, None, beta=0.9).spikes
    stream.synchronize()
    ref = reference("lif")(x, None, beta=0.9).spikes
    assert torch.equal(out, ref)


def test_auto_picks_cupy_for_cuda_tensors():
    _impl("lif")
    assert resolve("lif", "auto", "cuda")[0].__name__ == "lif_sequence_cupy"
