"""The CUDA kernels' entry points (``neuron_kernels.cu``), compiled for the host, launched
over the real grid with the CuPy launcher's argument records and behind the same custom
operators, against the PyTorch reference: every neuron x reset x surrogate x storage dtype."""

from __future__ import annotations

import math

import pytest
import torch
from kernel_cases import (
    CASE_IDS,
    CASES,
    FUSED,
    alif_decay_gradients,
    compare_with_reference,
    first_params,
    fused_impl,
    make_input,
    make_state,
    reference,
)

from snn.backends import UnsupportedConfiguration
from snn.fused.autograd import fused_sequence

_impl = fused_impl


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_every_configuration_matches_reference(host_engine, case):
    neuron, params = case
    x = make_input((13, 2, 3), params).requires_grad_()
    state = make_state(neuron, x)
    compare_with_reference(_impl(host_engine, neuron), neuron, params, x, state)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_every_configuration_in_float64(host_engine, case):
    neuron, params = case
    x = make_input((9, 2, 3), params, dtype=torch.float64).requires_grad_()
    compare_with_reference(_impl(host_engine, neuron), neuron, params, x,
                           make_state(neuron, x), rtol=1e-12)


@pytest.mark.parametrize("neuron", sorted(FUSED))
def test_float64_and_zero_initial_state_over_several_blocks(host_engine, neuron):
    params = first_params(neuron)
    x = make_input((12, 3, 200), params, dtype=torch.float64).requires_grad_()
    compare_with_reference(_impl(host_engine, neuron), neuron, params, x, None, rtol=1e-12)


@pytest.mark.parametrize("reset", ["subtract", "hard", "none"])
@pytest.mark.parametrize("decay_input", [False, True])
def test_learnable_decay_and_threshold(host_engine, reset, decay_input):
    """Parametric LIF (a per-neuron tensor decay) with a learnable scalar threshold."""
    beta = torch.tensor([0.6, 0.8, 0.95]).requires_grad_()
    thr = torch.tensor(0.9).requires_grad_()
    params = {"beta": beta, "threshold": thr, "reset": reset, "decay_input": decay_input,
              "surrogate": "sigmoid", "v_reset": 0.1}
    x = make_input((30, 2, 3), {"decay_input": decay_input}).requires_grad_()
    state = make_state("lif", x)
    compare_with_reference(_impl(host_engine, "lif"), "lif", params, x, state,
                           extra=(beta, thr))


def test_learnable_decay_of_leaky_integrator(host_engine):
    beta = torch.tensor(0.7).requires_grad_()
    x = torch.randn(25, 4, 2).requires_grad_()
    compare_with_reference(_impl(host_engine, "li"), "li", {"beta": beta, "decay_input": True},
                           x, make_state("li", x), extra=(beta,))


def test_per_channel_threshold_on_alif(host_engine):
    thr = torch.tensor([[0.8], [1.2]]).requires_grad_()  # broadcast over [B=3, C=2, N=1]
    params = {"beta": 0.9, "beta_adapt": 0.95, "adapt_scale": 0.3, "threshold": thr}
    x = make_input((20, 3, 2, 1), params).requires_grad_()
    compare_with_reference(_impl(host_engine, "alif"), "alif", params, x,
                           make_state("alif", x), extra=(thr,))


@pytest.mark.parametrize("reset", ["subtract", "hard"])
def test_alif_learnable_decay_rebuilds_the_previous_membrane_with_the_adapted_threshold(
        host_engine, reset):
    fused, ref = alif_decay_gradients(host_engine, reset)
    torch.testing.assert_close(fused, ref, rtol=1e-10, atol=1e-12)


def test_tensor_decay_on_cuba_is_left_to_torch(host_engine):
    x = torch.randn(4, 2, 3)
    with pytest.raises(UnsupportedConfiguration):
        fused_sequence(host_engine, FUSED["cuba_lif"], x, None, False,
                       {"alpha": torch.tensor(0.5), "beta": 0.9})


HALF_TOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
"""Documented tolerance of half-precision runs: membrane error relative to its scale, on
neurons whose spike trains agree with a float32 run of the same (rounded) inputs."""


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_half_precision_within_documented_tolerance(host_engine, dtype, case):
    neuron, params = case
    x = make_input((16, 4, 32), params, dtype=dtype).requires_grad_()
    out = _impl(host_engine, neuron)(x, None, record=True, **params)
    xf = x.detach().float().requires_grad_()
    ref = reference(neuron)(xf, None, record=True, **params)
    w = torch.linspace(-1, 1, x.numel()).reshape(x.shape)
    (g,) = torch.autograd.grad((out.spikes.float() * w).sum() + out.v.float().sum(), x)
    (g_ref,) = torch.autograd.grad((ref.spikes * w).sum() + ref.v.sum(), xf)
    assert g.dtype == dtype and bool(torch.isfinite(g).all())
    cos = torch.nn.functional.cosine_similarity(g.float().flatten(), g_ref.flatten(), dim=0)
    assert cos >= 0.9, f"input gradient points elsewhere than float32's (cosine {cos:.3f})"
    assert out.spikes.dtype == dtype
    if not FUSED[neuron].spiking:  # the output is the membrane: no spikes to disagree
        agree = torch.ones(x.shape[1:], dtype=torch.bool)
    else:
        agree = (out.spikes.float() == ref.spikes).all(dim=0)
    assert agree.float().mean() >= 0.9, "spike trains disagree with float32 too often"
    err = (out.v.float() - ref.v).abs()[:, agree].max()
    scale = ref.v.abs().max()
    assert err <= HALF_TOL[dtype] * scale, f"membrane error {err} over scale {scale}"


def test_half_conversions_round_to_nearest_even(host_lib):
    """The host-side float<->half/bfloat16 conversions equal torch's for every half value
    and for random floats (normals, subnormals, ties, overflow, inf and nan)."""
    every = torch.arange(0, 1 << 16, dtype=torch.int32).to(torch.int16).view(torch.float16)
    back = torch.tensor([host_lib.snn_host_half_to_float(i & 0xFFFF)
                         for i in range(1 << 16)], dtype=torch.float32)
    ref = every.float()
    finite = ~torch.isnan(ref)
    assert torch.equal(back[finite], ref[finite])
    assert torch.isnan(back[~finite]).all()
    g = torch.Generator().manual_seed(3)
    vals = torch.cat([
        torch.randn(3000, generator=g) * 10 ** torch.randint(-9, 6, (3000,), generator=g),
        every.float()[finite] * (1 + 2.0**-11),  # exact ties between neighbouring halves
        torch.tensor([65504.0, 65519.0, 65520.0, 1e6, -1e6, math.inf, -math.inf, 0.0, -0.0,
                      2.0**-25, 2.0**-24, 3 * 2.0**-26]),
    ])
    ours = torch.tensor([host_lib.snn_host_float_to_half(float(v)) for v in vals],
                        dtype=torch.int32)
    theirs = vals.half().view(torch.int16).to(torch.int32) & 0xFFFF
    assert torch.equal(ours, theirs)
    ours_bf = torch.tensor([host_lib.snn_host_float_to_bf16(float(v)) for v in vals],
                           dtype=torch.int32)
    theirs_bf = vals.bfloat16().view(torch.int16).to(torch.int32) & 0xFFFF
    assert torch.equal(ours_bf, theirs_bf)
