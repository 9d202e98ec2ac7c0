"""Spiking RWKV (SpikeGPT, Zhu et al. 2023): WKV forms, token shift, step == sequence, causality."""

from __future__ import annotations

import pytest
import torch

import snn
from snn.layers import SpikingChannelMix, SpikingRWKVBlock, SpikingTimeMix, wkv, wkv_recurrent

LOW = {"beta": 0.5, "decay_input": True, "reset": "hard", "threshold": 0.1}


def _wkv_by_definition(w, u, k, v):
    out = torch.zeros_like(v)
    for t in range(k.shape[0]):
        num = torch.exp(u + k[t]) * v[t]
        den = torch.exp(u + k[t])
        for i in range(t):
            e = torch.exp(-(t - 1 - i) * w + k[i])
            num, den = num + e * v[i], den + e
        out[t] = num / den
    return out


def _wkv_inputs(steps=12, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = 5
    w = torch.rand(c, generator=g, dtype=torch.float64) * 2
    u = torch.randn(c, generator=g, dtype=torch.float64)
    k = torch.randn(steps, 2, c, generator=g, dtype=torch.float64) * scale
    v = torch.randn(steps, 2, c, generator=g, dtype=torch.float64)
    return w, u, k, v


def test_recurrent_and_explicit_wkv_equal_the_definition():
    w, u, k, v = _wkv_inputs()
    want = _wkv_by_definition(w, u, k, v)
    assert torch.allclose(wkv(w, u, k, v), want, atol=1e-12)
    y, _ = wkv_recurrent(w, u, k, v)
    assert torch.allclose(y, want, atol=1e-12)
    # split anywhere, the carried state continues the recurrence
    y1, s = wkv_recurrent(w, u, k[:5], v[:5])
    y2, _ = wkv_recurrent(w, u, k[5:], v[5:], s)
    assert torch.allclose(torch.cat([y1, y2]), want, atol=1e-12)


def test_wkv_is_stable_for_large_keys():
    w, u, k, v = _wkv_inputs(scale=1.0)
    k = k.float() * 200  # e^(200) overflows float32
    y, _ = wkv_recurrent(w.float(), u.float(), k, v.float())
    assert torch.isfinite(y).all()
    assert torch.allclose(y.double(), wkv(w, u, k.double(), v), atol=1e-5)


def test_wkv_gradients_agree():
    w, u, k, v = (t.clone().requires_grad_() for t in _wkv_inputs(steps=6))
    grads = []
    for form in (lambda: wkv(w, u, k, v), lambda: wkv_recurrent(w, u, k, v)[0]):
        g = torch.autograd.grad(form().pow(2).sum(), (w, u, k, v))
        grads.append(g)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("make", [
    lambda: SpikingTimeMix(8, 1, 3),
    lambda: SpikingChannelMix(8, 16, 2, 3),
    lambda: SpikingRWKVBlock(8, 0, 2, neuron_kwargs=LOW),
    lambda: SpikingRWKVBlock(8, 1, 2, neuron="cuba_lif", neuron_kwargs={"threshold": 0.1}),
    lambda: SpikingRWKVBlock(8, 1, 2, spiking=False),
], ids=["time_mix", "channel_mix", "block_lif", "block_cuba", "block_plain"])
def test_step_equals_sequence(make):
    torch.manual_seed(0)
    module = make().double()
    x = torch.randn(15, 3, 8, dtype=torch.float64)
    with torch.no_grad():
        seq = module(x)
        snn.reset(module)
        halves = torch.cat([module(x[:7]), module(x[7:])])
        snn.set_step_mode(module, "single")
        steps = torch.stack([module(x_t) for x_t in x])
    assert torch.allclose(seq, halves, atol=1e-12)
    assert torch.allclose(seq, steps, atol=1e-12)


def test_block_adds_binary_spikes_and_is_causal():
    torch.manual_seed(0)
    block = SpikingRWKVBlock(8, 1, 2, neuron_kwargs=LOW)
    x = torch.randn(20, 2, 8)
    spikes = []
    hooks = [n.register_forward_hook(lambda _m, _i, out: spikes.append(out))
             for n in (block.neuron1, block.neuron2)]
    with torch.no_grad():
        a = block(x)
    for h in hooks:
        h.remove()
    for s in spikes:
        assert set(s.unique().tolist()) == {0.0, 1.0}
    x2 = x.clone()
    x2[11] += torch.randn(2, 8)
    snn.reset(block)
    with torch.no_grad():
        b = block(x2)
    assert torch.equal(a[:11], b[:11])  # nothing before token 11 sees it
    assert not torch.equal(a[11:], b[11:])


def test_token_shift_mixes_the_previous_token():
    mix = SpikingChannelMix(4, 4)
    with torch.no_grad():
        mix.mix_k.fill_(0.0)  # the key sees only the previous token
        mix.mix_r.fill_(1.0)
    x = torch.randn(5, 1, 4)
    k_in = []
    mix.key.register_forward_hook(lambda _m, inp, _o: k_in.append(inp[0]))
    mix(x)
    assert torch.equal(k_in[0][0], torch.zeros(1, 4))
    assert torch.equal(k_in[0][1:], x[:-1])


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    block = SpikingRWKVBlock(8, 0, 1, neuron_kwargs=LOW)
    block(torch.randn(10, 2, 8)).pow(2).sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_arguments():
    with pytest.raises(ValueError, match="layer_id"):
        SpikingRWKVBlock(8, 2, 2)
    with pytest.raises(ValueError, match="dim"):
        SpikingTimeMix(0)
    with pytest.raises(ValueError, match="needs a spiking neuron"):
        SpikingRWKVBlock(8, neuron="li")
    with pytest.raises(ValueError, match=r"SpikingTimeMix \(sequence mode\) expects \[T, B, D\]"):
        SpikingTimeMix(8)(torch.randn(3, 8))
    with pytest.raises(ValueError, match="wkv expects decay"):
        wkv(torch.rand(3), torch.rand(4), torch.rand(2, 1, 4), torch.rand(2, 1, 4))
