"""The fused CPU path (numba) against the PyTorch reference, for every configuration."""

from __future__ import annotations

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
)

from snn.backends import UnsupportedConfiguration
from snn.functional import LIFState
from snn.surrogate import ATan

pytest.importorskip("numba", reason="the numba backend needs numba (pip install 'snn[cpu]')")

from snn.cpu_kernels import ops

IMPLS = {name: fused_impl("numba", name) for name in FUSED}
LIF = IMPLS["lif"]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_every_configuration_matches_reference(case):
    neuron, params = case
    x = make_input((17, 2, 3), params).requires_grad_()
    compare_with_reference(IMPLS[neuron], neuron, params, x, make_state(neuron, x))


@pytest.mark.parametrize("neuron", sorted(IMPLS))
def test_float64_from_zero_state(neuron):
    params = first_params(neuron)
    x = make_input((30, 3, 4), params, dtype=torch.float64).requires_grad_()
    compare_with_reference(IMPLS[neuron], neuron, params, x, None, rtol=1e-12)


@pytest.mark.parametrize("reset", ["subtract", "hard", "none"])
@pytest.mark.parametrize("decay_input", [False, True])
def test_parametric_decay_and_learnable_threshold(reset, decay_input):
    beta = torch.tensor([[0.6], [0.8], [0.95]]).requires_grad_()  # per channel of [B, 3, 2]
    thr = torch.tensor(0.9).requires_grad_()
    params = {"beta": beta, "threshold": thr, "reset": reset, "decay_input": decay_input,
              "surrogate": "triangle", "v_reset": 0.1}
    x = make_input((40, 2, 3, 2), {"decay_input": decay_input}).requires_grad_()
    compare_with_reference(LIF, "lif", params, x, make_state("lif", x),
                           extra=(beta, thr))


def test_non_contiguous_input_and_long_sequence():
    base = make_input((6, 3, 600), {}).requires_grad_()
    x = base.transpose(0, 2)  # [600, 3, 6], non-contiguous
    assert not x.is_contiguous()
    compare_with_reference(LIF, "lif", {"beta": 0.9}, x, None)


def test_expanded_output_gradient():
    """``spikes.sum().backward()`` hands an expanded scalar gradient; no copy is needed."""
    x = make_input((20, 4, 5), {}).requires_grad_()
    out = LIF(x, None, beta=0.9, surrogate="erf")
    (g,) = torch.autograd.grad(out.spikes.sum(), x)
    x2 = x.detach().clone().requires_grad_()
    ref = torch.autograd.grad(
        __import__("snn.functional", fromlist=["x"]).lif_sequence(
            x2, None, beta=0.9, surrogate="erf").spikes.sum(), x2)[0]
    torch.testing.assert_close(g, ref, rtol=1e-5, atol=1e-6)


def test_unknown_surrogate_is_unsupported():
    class Shifted(ATan):
        def derivative(self, x):
            return super().derivative(x - 0.1)

    with pytest.raises(UnsupportedConfiguration):
        LIF(torch.randn(3, 2, 2), None, beta=0.9, surrogate=Shifted())


def test_half_precision_is_unsupported_on_cpu():
    with pytest.raises(UnsupportedConfiguration):
        LIF(torch.randn(3, 2, 2, dtype=torch.float16), None, beta=0.9)


def test_invalid_parameters_raise_like_the_reference():
    x = torch.randn(3, 2, 2)
    with pytest.raises(ValueError, match="beta"):
        LIF(x, None, beta=1.5)
    with pytest.raises(ValueError, match="reset"):
        LIF(x, None, beta=0.5, reset="soft")
    with pytest.raises(TypeError, match="beta"):
        LIF(x, None)
    with pytest.raises(TypeError, match="unexpected"):
        LIF(x, None, beta=0.5, tau=3.0)
    with pytest.raises(ValueError, match=r"state\.v"):
        LIF(x, LIFState(torch.zeros(5)), beta=0.5)


@pytest.mark.parametrize("neuron", ["lif", "alif", "cuba_lif"])
def test_parallel_blocks_match_reference(monkeypatch, neuron):
    """Several blocks shared among worker threads, the last one partial."""
    import numba

    from snn.cpu_kernels import loops

    monkeypatch.setattr(ops, "SERIAL_WORK", 0)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        params = first_params(neuron)
        n = 3 * loops.BLOCK + 77
        assert n > loops.backward_block(12)
        x = make_input((12, 1, n), params).requires_grad_()
        compare_with_reference(IMPLS[neuron], neuron, params, x, make_state(neuron, x))
    finally:
        numba.set_num_threads(previous)


def test_double_backward_is_refused_clearly():
    x = make_input((5, 2, 3), {}).requires_grad_()
    out = LIF(x, None, beta=0.9)
    (g,) = torch.autograd.grad(out.spikes.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=r"second derivative.*backend='torch'"):
        torch.autograd.grad(g.sum(), x)


@pytest.mark.parametrize("reset", ["subtract", "hard"])
def test_alif_learnable_decay_rebuilds_the_previous_membrane_with_the_adapted_threshold(reset):
    fused, ref = alif_decay_gradients("numba", reset)
    torch.testing.assert_close(fused, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("per_neuron", [False, True], ids=["lif_loops", "staged_loops"])
def test_outputs_written_over_the_input_equal_fresh_ones(per_neuron):
    """``out=`` (what snn.layers.lean passes): the spikes may overwrite the input in forward,
    and the input's gradient the kept input in backward, with the same values as fresh
    outputs; with a shared decay (the LIF loops) and a per-neuron one (the staged loops)."""
    from snn.fused.autograd import Saved, _parse_params, make_spec
    from snn.fused.description import get_description

    desc = get_description("lif")
    spec = make_spec(desc, _parse_params(desc, {"beta": 0.5, "threshold": 1.0}))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3000, generator=g) * 2
    gs = torch.randn(5, 3000, generator=g)
    n = x.shape[1]
    zeros = x.new_zeros(n)
    beta, c, thr = (torch.full((n if per_neuron else 1,), v) for v in (0.5, 0.5, 1.0))
    engine = ops.ENGINE
    fresh_run = engine.forward(spec, x, zeros, zeros, zeros, beta, c, thr, False)
    buf = x.clone()
    inplace = engine.forward(spec, buf, zeros, zeros, zeros, beta, c, thr, False, out=buf)
    assert inplace.spikes.data_ptr() == buf.data_ptr()
    assert torch.equal(inplace.spikes, fresh_run.spikes) and fresh_run.spikes.sum() > 0
    assert torch.equal(inplace.vT, fresh_run.vT)

    def backward(kept, out=None):
        saved = Saved(None, None, kept, zeros, zeros, zeros, beta, c, thr)
        return engine.backward(spec, saved, gs, None, zeros, zeros, zeros, False, False,
                               out=out)

    fresh_grad = backward(x)
    buf = x.clone()
    inplace_grad = backward(buf, out=buf)
    assert inplace_grad.gx.data_ptr() == buf.data_ptr()
    assert torch.equal(inplace_grad.gx, fresh_grad.gx)
    assert torch.equal(inplace_grad.gv0, fresh_grad.gv0)
    assert inplace_grad.gbeta is None and inplace_grad.gthr is None
    with pytest.raises(ValueError, match="out must be"):
        engine.forward(spec, x, zeros, zeros, zeros, beta, c, thr, False, out=x.t())
