"""Legendre memory (Voelker et al., NeurIPS 2019) and the spiking LMU cell (LMUFormer, L2MU)."""

from __future__ import annotations

import math

import pytest
import torch

import snn
from snn.layers import (
    LegendreMemory,
    SpikingLMU,
    legendre_readout,
    legendre_state_space,
    legendre_zoh,
)


def test_continuous_matrices_by_hand():
    a, b = legendre_state_space(3)
    # A_ij = (2i+1) * (-1 if i < j else (-1)^(i-j+1)), B_i = (2i+1)(-1)^i
    assert a.tolist() == [[-1, -1, -1], [3, -3, -3], [-5, 5, -5]]
    assert b.tolist() == [1, -3, 5]
    a2, b2 = legendre_state_space(3, theta=4.0)
    assert torch.equal(a2, a / 4) and torch.equal(b2, b / 4)


def test_zoh_matches_scipy():
    signal = pytest.importorskip("scipy.signal")
    import numpy as np

    d, theta, dt = 10, 37.0, 0.5
    a, b = legendre_state_space(d, theta)
    ad, bd, *_ = signal.cont2discrete(
        (a.numpy(), b.numpy()[:, None], np.ones((1, d)), np.zeros(1)), dt, method="zoh")
    a_bar, b_bar = legendre_zoh(d, theta, dt)
    assert np.allclose(a_bar.numpy(), ad, atol=1e-12)
    assert np.allclose(b_bar.numpy(), bd[:, 0], atol=1e-12)


def test_zoh_is_exact_for_held_input():
    # one ZOH step equals integrating the continuous system with the input held constant
    d, theta = 6, 5.0
    a, b = legendre_state_space(d, theta)
    a_bar, b_bar = legendre_zoh(d, theta)
    m0 = torch.randn(d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    u = 0.7
    m, n = m0.clone(), 20000
    h = 1.0 / n
    for _ in range(n):  # midpoint rule, error O(h^2)
        k1 = a @ m + b * u
        k2 = a @ (m + 0.5 * h * k1) + b * u
        m = m + h * k2
    assert torch.allclose(a_bar @ m0 + b_bar * u, m, atol=1e-7)


def test_readout_is_the_shifted_legendre_sum():
    # P_i(r) = (-1)^i sum_j C(i, j) C(i+j, j) (-r)^j, as the paper writes it
    r = torch.tensor([0.0, 0.3, 0.5, 1.0], dtype=torch.float64)
    got = legendre_readout(7, r)
    for i in range(7):
        want = (-1) ** i * sum(math.comb(i, j) * math.comb(i + j, j) * (-r) ** j
                               for j in range(i + 1))
        assert torch.allclose(got[:, i], want, atol=1e-10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        legendre_readout(3, 1.5)


def _band_limited(steps: int, theta: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    t = torch.arange(steps, dtype=torch.float64)
    u = torch.zeros(steps, dtype=torch.float64)
    for k in range(1, 6):  # frequencies up to 1.25 cycles per window
        amp, phase = torch.randn(1, generator=g, dtype=torch.float64), torch.rand(1, generator=g)
        u += amp * torch.sin(2 * math.pi * k / (4 * theta) * t + 6 * phase)
    return u


@pytest.mark.parametrize("r", [0.0, 0.25, 0.5, 1.0])
def test_memory_reconstructs_the_delayed_input(r):
    # the paper's property: u(t - r*theta) ~ sum_i P_i(r) m_i(t) for a band-limited input
    theta, steps = 60.0, 600
    u = _band_limited(steps, theta)
    mem = LegendreMemory(12, theta).double()
    m = mem(u[:, None, None])[:, 0, 0]  # [T, d]
    rec = m @ legendre_readout(12, r)
    delay = round(r * theta)
    t = torch.arange(200, steps)
    rms = u[t].pow(2).mean().sqrt()
    err = (rec[t] - u[t - delay]).pow(2).mean().sqrt() / rms
    assert err < 0.06
    if r > 0:  # and it is the delayed signal, not the present one
        assert (rec[t] - u[t]).pow(2).mean().sqrt() / rms > 0.3


def test_more_dimensions_reconstruct_better():
    theta, steps = 60.0, 600
    u = _band_limited(steps, theta)
    t = torch.arange(200, steps)
    errors = []
    for d in (4, 8, 12):
        m = LegendreMemory(d, theta).double()(u[:, None, None])[:, 0, 0]
        rec = m @ legendre_readout(d, 0.5)
        errors.append((rec[t] - u[t - 30]).pow(2).mean().sqrt().item())
    assert errors[0] > errors[1] > errors[2]


def test_fft_equals_scan_and_calls_continue():
    u = torch.randn(50, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    mem = LegendreMemory(8, 20.0).double()
    parts = torch.cat([mem(u[:20]), mem(u[20:])])  # fft, the second call from a carried state
    snn.reset(mem)
    mem.method = "scan"
    assert torch.allclose(parts, mem(u), atol=1e-10)
    snn.set_step_mode(mem, "single")
    steps = torch.stack([mem(u_t) for u_t in u])
    assert torch.allclose(parts, steps, atol=1e-10)


def _cell(neuron: str, **kw) -> SpikingLMU:
    opts = {"threshold": 0.3}
    if neuron == "lif":
        opts.update(beta=0.5, decay_input=True)
    return SpikingLMU(6, 10, order=8, theta=12, memory_inputs=2, neuron=neuron,
                      neuron_kwargs=opts, **kw)


@pytest.mark.parametrize("neuron", ["lif", "cuba_lif"])
def test_spiking_lmu_step_equals_sequence(neuron):
    torch.manual_seed(0)
    cell = _cell(neuron)
    x = torch.rand(30, 3, 6) * 2
    cell(x)  # one training pass sets the batch-norm running statistics
    cell.eval()
    snn.reset(cell)
    with torch.no_grad():
        seq = cell(x)
        snn.reset(cell)
        halves = torch.cat([cell(x[:13]), cell(x[13:])])
        snn.set_step_mode(cell, "single")
        steps = torch.stack([cell(x_t) for x_t in x])
    assert 0.02 < seq.mean() < 0.98  # it spikes, and not everywhere
    assert set(seq.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(seq, halves) and torch.equal(seq, steps)


def test_spiking_lmu_trains_and_is_causal():
    torch.manual_seed(0)
    cell = _cell("lif", norm=False)
    x = torch.rand(20, 2, 6, requires_grad=True)
    cell(x).sum().backward()
    assert cell.W_u.weight.grad.abs().sum() > 0 and x.grad.abs().sum() > 0
    snn.reset(cell)
    with torch.no_grad():
        a = cell(x)
        snn.reset(cell)
        x2 = x.detach().clone()
        x2[12:] = torch.rand(8, 2, 6)
        b = cell(x2)
    assert torch.equal(a[:12], b[:12]) and not torch.equal(a[12:], b[12:])


def test_bad_arguments():
    with pytest.raises(ValueError, match="order"):
        LegendreMemory(0, 10.0)
    with pytest.raises(ValueError, match="theta"):
        legendre_zoh(4, -1.0)
    with pytest.raises(ValueError, match="method"):
        LegendreMemory(4, 10.0, method="loop")
    with pytest.raises(ValueError, match="SpikingLMU needs a spiking neuron"):
        SpikingLMU(4, 4, neuron="li")
    cell = SpikingLMU(4, 5)
    with pytest.raises(ValueError, match=r"SpikingLMU \(sequence mode\) expects \[T, B, "):
        cell(torch.rand(3, 4))
