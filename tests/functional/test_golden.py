"""Golden traces: short inputs whose membrane and spikes are worked out by hand below."""

from __future__ import annotations

import pytest
import torch

import snn.functional as F


def _seq(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).view(-1, 1, 1)


def _check(out: F.SequenceOutput, spikes: list[float], v: list[float]) -> None:
    assert out.v is not None
    assert out.spikes.flatten().tolist() == spikes
    torch.testing.assert_close(out.v.flatten(), torch.tensor(v, dtype=torch.float64))


X = [0.6, 0.8, 0.2, 1.5]


# beta = 0.5, threshold = 1:
#   t1: h = 0.6                     -> no spike
#   t2: h = 0.5*0.6 + 0.8 = 1.1     -> spike
#   subtract: v2 = 0.1; t3: h = 0.05 + 0.2 = 0.25; t4: h = 0.125 + 1.5 = 1.625 -> spike, v = 0.625
#   hard (v_reset = -0.2): v2 = -0.2; t3: h = -0.1 + 0.2 = 0.1; t4: h = 0.05 + 1.5 = 1.55 -> -0.2
#   none: v2 = 1.1; t3: h = 0.55 + 0.2 = 0.75; t4: h = 0.375 + 1.5 = 1.875 -> spike, stays
@pytest.mark.parametrize(
    ("reset", "spikes", "v"),
    [
        ("subtract", [0, 1, 0, 1], [0.6, 0.1, 0.25, 0.625]),
        ("hard", [0, 1, 0, 1], [0.6, -0.2, 0.1, -0.2]),
        ("none", [0, 1, 0, 1], [0.6, 1.1, 0.75, 1.875]),
    ],
)
def test_lif_golden(reset: str, spikes: list[float], v: list[float]) -> None:
    out = F.lif_sequence(_seq(X), beta=0.5, reset=reset, v_reset=-0.2, record=True)
    _check(out, spikes, v)


def test_lif_decay_input_golden() -> None:
    # h = 0.5 v + 0.5 x, threshold 1 (spikes at h >= threshold):
    # t1: h = 1.0 -> spike, v = 0; t2: h = 0 + 0.75 = 0.75; t3: h = 0.375 + 0 = 0.375
    out = F.lif_sequence(_seq([2.0, 1.5, 0.0]), beta=0.5, decay_input=True, record=True)
    _check(out, [1, 0, 0], [0.0, 0.75, 0.375])


def test_if_golden() -> None:
    # h = v + 0.6: 0.6; 1.2 -> spike, 0.2; 0.8; 1.4 -> spike, 0.4
    out = F.if_sequence(_seq([0.6] * 4), record=True)
    _check(out, [0, 1, 0, 1], [0.6, 0.2, 0.8, 0.4])


def test_if_threshold_and_hard_reset_golden() -> None:
    # threshold 2, hard reset to 0.5: 1.5; 3.0 -> spike, 0.5; 2.0 -> spike, 0.5; 2.0 -> spike
    out = F.if_sequence(_seq([1.5] * 4), threshold=2.0, reset="hard", v_reset=0.5, record=True)
    _check(out, [0, 1, 1, 1], [1.5, 0.5, 0.5, 0.5])


def test_li_golden() -> None:
    # v = 0.5 v + x: 1, 1.5, 0.75
    out = F.li_sequence(_seq([1.0, 1.0, 0.0]), beta=0.5, record=True)
    assert out.spikes.flatten().tolist() == [1.0, 1.5, 0.75]


@pytest.mark.parametrize(
    ("reset", "spikes", "v"),
    [
        # i = 0.5 i + x: 1, 0.5, 0.25, 1.125
        # subtract: h = 1 -> spike, v = 0; h = 0.5; h = 0.25 + 0.25 = 0.5;
        #           h = 0.25 + 1.125 = 1.375 -> spike, v = 0.375
        ("subtract", [1, 0, 0, 1], [0.0, 0.5, 0.5, 0.375]),
        # none: h = 1 -> spike; h = 0.5 + 0.5 = 1 -> spike; h = 0.5 + 0.25 = 0.75;
        #       h = 0.375 + 1.125 = 1.5 -> spike
        ("none", [1, 1, 0, 1], [1.0, 1.0, 0.75, 1.5]),
    ],
)
def test_cuba_lif_golden(reset: str, spikes: list[float], v: list[float]) -> None:
    out = F.cuba_lif_sequence(
        _seq([1.0, 0.0, 0.0, 1.0]), alpha=0.5, beta=0.5, reset=reset, record=True
    )
    _check(out, spikes, v)
    assert out.state.i.item() == pytest.approx(1.125)


def test_alif_golden() -> None:
    # beta = 0.5, beta_adapt = 0.5, adapt_scale = 1, threshold 1, subtract:
    # t1: h = 1.2, theta = 1     -> spike, v = 0.2,  a = 0.5
    # t2: h = 1.3, theta = 1.5   -> none,  v = 1.3,  a = 0.25
    # t3: h = 1.85, theta = 1.25 -> spike, v = 0.6,  a = 0.625
    # t4: h = 0.3, theta = 1.625 -> none,  v = 0.3,  a = 0.3125
    out = F.alif_sequence(
        _seq([1.2, 1.2, 1.2, 0.0]), beta=0.5, beta_adapt=0.5, adapt_scale=1.0, record=True
    )
    _check(out, [1, 0, 1, 0], [0.2, 1.3, 0.6, 0.3])
    assert out.state.a.item() == pytest.approx(0.3125)


def test_alif_hard_reset_uses_adapted_threshold_only_for_firing() -> None:
    # t1: h = 1.2 -> spike, v = 0, a = 0.5; t2: h = 1.2, theta = 1.5 -> none, v = 1.2
    out = F.alif_sequence(
        _seq([1.2, 1.2]), beta=0.5, beta_adapt=0.5, adapt_scale=1.0, reset="hard", record=True
    )
    _check(out, [1, 0], [0.0, 1.2])


def test_detach_reset_changes_gradient_not_values() -> None:
    x = _seq([0.7, 0.7, 0.7, 0.7]).requires_grad_()
    grads, outs = [], []
    for detach in (False, True):
        out = F.lif_sequence(x, beta=0.9, detach_reset=detach, surrogate="sigmoid", record=True)
        (g,) = torch.autograd.grad(out.v.sum(), x)
        grads.append(g)
        outs.append(out.v.detach())
    torch.testing.assert_close(outs[0], outs[1])
    assert not torch.allclose(grads[0], grads[1])


def test_step_and_sequence_agree_and_state_carries_over() -> None:
    x = torch.rand(6, 3, 5, dtype=torch.float64)
    full = F.lif_sequence(x, beta=0.8, record=True)
    first = F.lif_sequence(x[:2], beta=0.8)
    second = F.lif_sequence(x[2:], first.state, beta=0.8)
    torch.testing.assert_close(torch.cat([first.spikes, second.spikes]), full.spikes)
    state = None
    for t in range(6):
        s, state = F.lif_step(x[t], state, beta=0.8)
        torch.testing.assert_close(s, full.spikes[t])
        torch.testing.assert_close(state.v, full.v[t])
