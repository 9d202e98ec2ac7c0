"""Integer (I-LIF) and ternary LIF neurons: hand-computed traces, the straight-through
gradient, the equivalence of integer spikes with D binary sub-steps, and signed symmetry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snn
from snn.functional import (
    ilif_sequence,
    ilif_step,
    multilevel_to_binary,
    ternary_lif_sequence,
    ternary_lif_step,
)
from snn.surrogate import ATan


def test_ilif_golden_trace():
    # h: 2.75 -> s 3, v -0.25; h 0.125 -> s 0; h 5.5625 -> s 4 (clipped), v 1.5625;
    # h 1.28125 -> s 1, v 0.28125 (every value exact in binary)
    x = torch.tensor([2.75, 0.25, 5.5, 0.5], dtype=torch.float64).reshape(4, 1, 1)
    out = ilif_sequence(x, record=True, beta=0.5, levels=4, threshold=1.0)
    assert out.spikes.flatten().tolist() == [3.0, 0.0, 4.0, 1.0]
    assert out.v.flatten().tolist() == [-0.25, 0.125, 1.5625, 0.28125]


def test_ilif_counts_multiples_of_the_threshold_and_rounds_ties_to_even():
    x = torch.tensor([[1.25, 2.5, 3.75, 0.5]])
    s, state = ilif_step(x, beta=0.5, levels=8, threshold=0.5)
    assert s.tolist() == [[2.0, 5.0, 8.0, 1.0]]  # 2.5, 5, 7.5 -> 8 (tie to even), 1
    assert state.v.tolist() == [[0.25, 0.0, -0.25, 0.0]]


def test_ilif_straight_through_gradient_window():
    """d s / d x = 1 / threshold where 0 <= h / threshold <= D, else 0 (Luo et al. 2024)."""
    x = torch.tensor([[-0.3, 0.2, 1.9, 2.1]], dtype=torch.float64, requires_grad=True)
    s, _ = ilif_step(x, beta=0.5, levels=4, threshold=0.5)
    (g,) = torch.autograd.grad(s.sum(), x)
    assert g.tolist() == [[0.0, 2.0, 2.0, 0.0]]


def test_integer_spikes_equal_d_binary_slots_through_a_linear_layer():
    torch.manual_seed(3)
    levels = 4
    x = torch.randn(6, 3, 5, dtype=torch.float64) * 1.5 + 1.0
    s = ilif_sequence(x, beta=0.25, levels=levels).spikes
    binary = multilevel_to_binary(s, levels)
    assert binary.shape == (6 * levels, 3, 5)
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(binary.reshape(6, levels, 3, 5).sum(1), s)
    layer = nn.Linear(5, 7, bias=False).double()
    summed = layer(binary).reshape(6, levels, 3, 7).sum(1)  # accumulate the slots
    torch.testing.assert_close(summed, layer(s), rtol=1e-12, atol=1e-12)


def test_ilif_equals_a_binary_neuron_run_for_d_sub_steps():
    """At inference, one I-LIF step is D binary sub-steps of the same membrane: a sub-step
    fires when the membrane is at least half a threshold and removes one threshold. The
    counts and the membrane left equal the integer neuron's (ties, where round-half-even
    and the sub-steps differ, have probability zero here)."""
    torch.manual_seed(4)
    levels, beta, theta = 4, 0.25, 0.8
    x = torch.randn(12, 2, 50, dtype=torch.float64) * 2.0 + 1.0
    out = ilif_sequence(x, record=True, beta=beta, levels=levels, threshold=theta)
    v = torch.zeros(2, 50, dtype=torch.float64)
    counts, membranes = [], []
    for t in range(x.shape[0]):
        h = beta * v + x[t]
        fired = torch.zeros_like(h)
        for _ in range(levels):
            b = (h >= theta / 2).to(h.dtype)  # one binary spike per sub-step
            fired = fired + b
            h = h - b * theta
        counts.append(fired)
        membranes.append(h)
        v = h
    assert torch.equal(torch.stack(counts), out.spikes)
    torch.testing.assert_close(torch.stack(membranes), out.v, rtol=1e-12, atol=1e-12)


def test_multilevel_to_binary_rejects_non_integer_spikes():
    with pytest.raises(ValueError, match=r"integers in 0\.\.4"):
        multilevel_to_binary(torch.tensor([[0.5]]), 4)
    with pytest.raises(ValueError, match="levels"):
        multilevel_to_binary(torch.tensor([[1.0]]), 0)


def test_ilif_refuses_hard_reset_and_surrogates():
    with pytest.raises(ValueError, match="subtract' or 'none"):
        ilif_step(torch.zeros(1, 2), reset="hard")
    with pytest.raises(ValueError, match="subtract' or 'none"):
        snn.MultiLevelLIF(reset="hard")
    with pytest.raises(TypeError, match="surrogate"):
        snn.MultiLevelLIF(surrogate="atan")
    assert snn.ILIF is snn.MultiLevelLIF and snn.NEURONS["ilif"] is snn.MultiLevelLIF


def test_ternary_golden_trace():
    # h 1.5 -> +1, v 0.5; h -0.25 -> 0; h -2.125 -> -1, v -1.125; h -0.3125 -> 0
    x = torch.tensor([1.5, -0.5, -2.0, 0.25], dtype=torch.float64).reshape(4, 1, 1)
    out = ternary_lif_sequence(x, record=True, beta=0.5, threshold=1.0)
    assert out.spikes.flatten().tolist() == [1.0, 0.0, -1.0, 0.0]
    assert out.v.flatten().tolist() == [0.5, -0.25, -1.125, -0.3125]


@pytest.mark.parametrize("reset", ["subtract", "hard", "none"])
def test_ternary_is_odd_symmetric(reset):
    """Symmetric thresholds (Guo et al. 2024): negating the input negates every spike."""
    torch.manual_seed(5)
    x = torch.randn(20, 3, 8, dtype=torch.float64) * 1.5
    a = ternary_lif_sequence(x, beta=0.7, reset=reset, threshold=0.6).spikes
    b = ternary_lif_sequence(-x, beta=0.7, reset=reset, threshold=0.6).spikes
    assert torch.equal(a, -b)
    assert (a == -1).any() and (a == 1).any()
    assert snn.NEURONS["ternary_lif"] is snn.TernaryLIF


def test_ternary_gradient_sums_both_threshold_crossings():
    sg = ATan(alpha=2.0)
    x = torch.tensor([[-1.2, -0.3, 0.4, 1.1]], dtype=torch.float64, requires_grad=True)
    s, _ = ternary_lif_step(x, beta=0.5, threshold=1.0, surrogate=sg)
    (g,) = torch.autograd.grad(s.sum(), x)
    h = x.detach()
    expected = sg.derivative(h - 1.0) + sg.derivative(-h - 1.0)
    torch.testing.assert_close(g, expected)
