"""TimeDistributed and the encoders."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snn
from snn.layers import (
    DeltaEncoder,
    LatencyEncoder,
    PoissonEncoder,
    RepeatEncoder,
    TimeDistributed,
    fold_time,
    unfold_time,
)


def test_time_distributed_equals_per_step_application() -> None:
    conv = nn.Conv2d(2, 4, 3, padding=1)
    layer = TimeDistributed(conv, nn.ReLU())
    x = torch.rand(5, 3, 2, 8, 8)
    out = layer(x)
    assert out.shape == (5, 3, 4, 8, 8)
    expected = torch.stack([torch.relu(conv(x[t])) for t in range(5)])
    torch.testing.assert_close(out, expected)


def test_time_distributed_rejects_neurons_and_bad_rank() -> None:
    with pytest.raises(TypeError, match="LIF is a neuron"):
        TimeDistributed(snn.LIF())
    with pytest.raises(ValueError, match=r"\[T, B, features\.\.\.\]"):
        TimeDistributed(nn.Identity())(torch.zeros(3))
    with pytest.raises(ValueError, match="not a multiple"):
        unfold_time(torch.zeros(7, 2), 2)
    assert unfold_time(fold_time(torch.zeros(3, 2, 5)), 3).shape == (3, 2, 5)


def test_time_distributed_one_step_gets_a_clear_error() -> None:
    layer = TimeDistributed(nn.Linear(4, 6))
    with pytest.raises(ValueError, match=r"got shape \(8, 4\).*one step \[B, F\]"):
        layer(torch.zeros(8, 4))
    assert layer(torch.zeros(1, 8, 4)).shape == (1, 8, 6)


def test_repeat_encoder() -> None:
    x = torch.rand(2, 3)
    out = RepeatEncoder(4)(x)
    assert out.shape == (4, 2, 3)
    assert all(torch.equal(out[t], x) for t in range(4))
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        RepeatEncoder(0)


def test_poisson_encoder_rates_and_reproducibility() -> None:
    x = torch.tensor([[0.0, 0.25, 0.5, 1.0]])
    enc = PoissonEncoder(4000, generator=torch.Generator().manual_seed(3))
    out = enc(x)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    rates = out.mean(0)[0]
    assert rates[0] == 0 and rates[3] == 1
    torch.testing.assert_close(rates, x[0], atol=0.03, rtol=0)
    again = PoissonEncoder(4000, generator=torch.Generator().manual_seed(3))(x)
    assert torch.equal(out, again)
    half = PoissonEncoder(4000, max_rate=0.5, generator=torch.Generator().manual_seed(3))(x)
    assert abs(half.mean(0)[0, 3].item() - 0.5) < 0.03
    with pytest.raises(ValueError, match=r"intensities in \[0, 1\]"):
        enc(torch.tensor([1.5]))


def test_latency_encoder_linear_and_log() -> None:
    x = torch.tensor([1.0, 0.5, 0.0, 0.25])
    enc = LatencyEncoder(5, threshold=0.0)
    # linear: t = round((1 - p) * (T - 1)): 0, 2, never (p <= threshold), 3
    assert enc.spike_times(x).tolist() == [0, 2, 5, 3]
    out = enc(x)
    assert out.shape == (5, 4)
    assert out.sum(0).tolist() == [1.0, 1.0, 0.0, 1.0]
    assert out[2, 1] == 1 and out[3, 3] == 1
    log = LatencyEncoder(100, threshold=0.2, linear=False, tau=5.0)
    # t = round(5 * ln(p / (p - 0.2))): p=1 -> 1.116 -> 1; p=0.4 -> 3.466 -> 3
    assert log.spike_times(torch.tensor([1.0, 0.4, 0.1])).tolist() == [1, 3, 100]


def test_delta_encoder() -> None:
    x = torch.tensor([0.0, 0.05, 0.12, 0.15, 0.0, 0.3]).view(-1, 1)
    out = DeltaEncoder(0.1)(x)
    # reference 0; 0.05 below; 0.12 -> +1 (ref 0.12); 0.15 no; 0.0 -> -1 (ref 0); 0.3 -> +1
    assert out.flatten().tolist() == [0, 0, 1, 0, -1, 1]
    on_only = DeltaEncoder(0.1, off_spikes=False)(x)
    assert on_only.flatten().tolist() == [0, 0, 1, 0, 0, 1]
