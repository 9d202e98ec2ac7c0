"""Readouts, losses, the monitor and the firing-rate regulariser."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snn
from snn.layers import (
    FiringRateRegularizer,
    Monitor,
    SpikeCount,
    SpikeRate,
    TimeLast,
    TimeMax,
    TimeMean,
    membrane_cross_entropy,
    rate_cross_entropy,
    readout,
    spike_count_mse,
)


def test_readouts() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 3.0]]).unsqueeze(1)  # [T=3, B=1, 2]
    assert SpikeCount()(x).tolist() == [[2.0, 3.0]]
    torch.testing.assert_close(SpikeRate()(x), torch.tensor([[2 / 3, 1.0]]))
    torch.testing.assert_close(TimeMean()(x), SpikeRate()(x))
    assert TimeLast()(x).tolist() == [[1.0, 3.0]]
    assert TimeMax()(x).tolist() == [[1.0, 3.0]]
    with pytest.raises(ValueError, match="unknown readout mode"):
        readout(x, "median")
    with pytest.raises(ValueError, match="time-first"):
        SpikeCount()(torch.zeros(3))


def test_losses_match_their_definitions() -> None:
    spikes = (torch.rand(10, 4, 3) > 0.5).float()
    target = torch.tensor([0, 2, 1, 1])
    torch.testing.assert_close(
        rate_cross_entropy(spikes, target), F.cross_entropy(spikes.mean(0), target)
    )
    v = torch.randn(10, 4, 3)
    torch.testing.assert_close(
        membrane_cross_entropy(v, target, mode="max"), F.cross_entropy(v.max(0).values, target)
    )
    torch.testing.assert_close(
        membrane_cross_entropy(v, target, mode="last"), F.cross_entropy(v[-1], target)
    )
    # counts [B, C] vs targets 8 for the labelled class, 2 for the others (T = 10)
    wanted = torch.full((4, 3), 2.0)
    wanted[torch.arange(4), target] = 8.0
    torch.testing.assert_close(spike_count_mse(spikes, target), F.mse_loss(spikes.sum(0), wanted))


def test_loss_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"\[T, B, C\]"):
        rate_cross_entropy(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="one class index per sample"):
        rate_cross_entropy(torch.zeros(2, 4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="correct_rate must be in"):
        spike_count_mse(torch.zeros(2, 4, 3), torch.zeros(4, dtype=torch.long), correct_rate=2)


def _net() -> nn.Sequential:
    return nn.Sequential(
        snn.TimeDistributed(nn.Linear(4, 6)),
        snn.LIF(),
        snn.TimeDistributed(nn.Linear(6, 2)),
        snn.LI(),
    )


def test_monitor_records_spikes_and_membrane_without_touching_modules() -> None:
    model = _net()
    attrs_before = {n: set(vars(m)) for n, m in model.named_modules()}
    x = torch.rand(7, 3, 4) * 2
    with Monitor(model, ["1", "3"], v=True) as mon:
        model(x)
        model(x)
    assert {n: set(vars(m)) for n, m in model.named_modules()} == attrs_before
    assert not model[1]._forward_hooks and not model[1]._trace_hooks
    spikes, v = mon.spikes("1"), mon.v("1")
    assert spikes.shape == v.shape == (14, 3, 6)
    snn.reset(model)
    expected = model(x)
    torch.testing.assert_close(mon.spikes("3")[:7], expected.detach())
    torch.testing.assert_close(mon.v("3")[:7], expected.detach())
    rates = mon.firing_rates()
    assert set(rates) == {"1", "3"} and 0 <= rates["1"] <= 1
    # a run outside the context is not recorded
    model(x)
    assert mon.spikes("1").shape[0] == 14


def test_monitor_default_layers_and_single_step() -> None:
    model = nn.Sequential(
        nn.Linear(4, 6), snn.LIF(step_mode="single"), nn.Linear(6, 2), snn.LI(step_mode="single")
    )
    xs = torch.rand(5, 3, 4) * 2
    with Monitor(model, v=True) as mon:
        outs = [model(xs[t]) for t in range(5)]
    assert mon.layers == ["1"]  # default: the spiking neurons
    assert mon.spikes("1").shape == mon.v("1").shape == (5, 3, 6)
    snn.reset(model)
    snn.set_step_mode(model, "sequence")
    seq = nn.Sequential(snn.TimeDistributed(model[0]), model[1])
    torch.testing.assert_close(mon.spikes("1"), seq(xs).detach())
    assert len(outs) == 5


def test_monitor_errors() -> None:
    model = _net()
    with pytest.raises(ValueError, match="no module named"):
        Monitor(model, ["9"])
    with pytest.raises(ValueError, match="only be recorded from neurons"):
        Monitor(model, ["0"], v=True)
    mon = Monitor(model)
    with pytest.raises(KeyError, match="nothing recorded"):
        mon.spikes("1")
    with pytest.raises(KeyError, match="not monitored"):
        mon.spikes("3")


def test_firing_rate_regularizer_penalises_and_trains_rates_down() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(snn.TimeDistributed(nn.Linear(4, 32)), snn.LIF(surrogate="sigmoid"))
    x = torch.rand(10, 8, 4) * 3
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with FiringRateRegularizer(model, upper=0.05, weight=10.0) as reg:
        rates = []
        for _ in range(30):
            snn.reset(model)
            out = model(x)
            rates.append(out.mean().item())
            penalty = reg.penalty()
            expected = 10.0 * torch.relu(out.mean() - 0.05) ** 2
            torch.testing.assert_close(penalty, expected)
            opt.zero_grad()
            penalty.backward()
            opt.step()
    assert rates[0] > 0.2 and rates[-1] < rates[0] / 2
    with pytest.raises(RuntimeError, match="no outputs recorded"):
        reg.penalty()
    with pytest.raises(ValueError, match="lower <= upper"):
        FiringRateRegularizer(model, lower=0.5, upper=0.1)


def test_regularizer_per_neuron_lower_bound() -> None:
    model = nn.Sequential(snn.LIF())
    x = torch.zeros(4, 2, 3)
    x[:, :, 0] = 2.0  # only neuron 0 fires, every step
    with FiringRateRegularizer(model, lower=0.5, per_neuron=True) as reg:
        model(x)
        # rates per neuron: [1, 0, 0] -> violations [0, 0.25, 0.25] -> mean 1/6
        assert reg.penalty().item() == pytest.approx(1 / 6)
