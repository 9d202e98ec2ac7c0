"""Spiking attention layers: shapes, spike outputs, the papers' formulas on small inputs, and
equality with SpikingJelly's layers under the same weights (when it is installed)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snn.layers.attention import (
    HadamardSum,
    QKAttention,
    SpikeDrivenSelfAttention,
    SpikeMask,
    SpikeQKV,
    SpikingSelfAttention,
    TokenBatchNorm,
)
from snn.neurons import IF, LIF

LAYERS = {
    "ssa": lambda: SpikingSelfAttention(16, 4),
    "sdsa": lambda: SpikeDrivenSelfAttention(16, 4),
    "sdsa_linear": lambda: SpikeDrivenSelfAttention(16, 4, variant="linear"),
    "qk_token": lambda: QKAttention(16, 4, kind="token"),
    "qk_channel": lambda: QKAttention(16, 4, kind="channel"),
}


def _spikes(*shape: int, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_shapes_gradients_and_spikes(name: str) -> None:
    torch.manual_seed(0)
    layer = LAYERS[name]()
    x = _spikes(3, 2, 5, 16).requires_grad_()
    y = layer(x)
    assert y.shape == x.shape
    if name.startswith(("ssa", "qk")):  # these end with a neuron
        assert set(y.unique().tolist()) <= {0.0, 1.0}
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in layer.parameters())


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_bad_shape_is_one_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match=r"\[T, B, N, 16\]"):
        LAYERS[name]()(torch.zeros(3, 2, 5, 8))


def test_heads_must_divide_dim() -> None:
    with pytest.raises(ValueError, match="multiple of num_heads"):
        SpikingSelfAttention(10, 4)


def test_spike_qkv_orders_agree_exactly() -> None:
    q, k, v = (_spikes(2, 3, 4, 40, 8, seed=s) for s in range(3))
    long = SpikeQKV(0.125)(q, k, v)  # N > d: Q (K^T V)
    ref = ((q @ k.transpose(-2, -1)) @ v) * 0.125
    assert torch.equal(long, ref)
    short = SpikeQKV(0.5)(q[..., :4, :], k[..., :4, :], v[..., :4, :])  # N <= d
    assert torch.equal(short, (q[..., :4, :] @ (k[..., :4, :].transpose(-2, -1)
                                                @ v[..., :4, :])) * 0.5)


def test_sdsa_is_mask_of_column_sums_by_hand() -> None:
    # one head, two tokens, three channels: SUM_c(K (x) V) counts matching spikes per column
    k = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    v = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    q = torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    col = HadamardSum(dim=-2)(k, v)
    assert col.tolist() == [[2.0, 1.0, 1.0]]
    mask = (col >= 2).float()  # a neuron with threshold 2 fires on column 0 only
    assert SpikeMask()(mask, q).tolist() == [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]


def test_ssa_matches_its_equation() -> None:
    torch.manual_seed(1)
    layer = SpikingSelfAttention(16, 4).eval()
    x = _spikes(3, 2, 6, 16)
    with torch.no_grad():
        ref_neurons = [LIF(beta=0.5, decay_input=True, reset="hard", detach_reset=True,
                           threshold=th) for th in (1.0, 1.0, 1.0, 0.5, 1.0)]
        q, k, v = (ref_neurons[i](getattr(layer, n)(x)) for i, n in enumerate("qkv"))
        split = [t.reshape(3, 2, 6, 4, 4).transpose(2, 3) for t in (q, k, v)]
        attn = (split[0] @ split[1].transpose(-2, -1) @ split[2]) * 0.125
        attn = ref_neurons[3](attn.transpose(2, 3).reshape(3, 2, 6, 16))
        ref = ref_neurons[4](layer.proj(attn))
        assert torch.equal(layer(x), ref)


def test_qk_token_attention_masks_tokens() -> None:
    torch.manual_seed(2)
    layer = QKAttention(8, 1, kind="token").eval()
    x = _spikes(2, 1, 5, 8)
    seen = {}
    layer.attn_neuron.register_forward_hook(lambda m, i, o: seen.update(a=o))
    layer.k_neuron.register_forward_hook(lambda m, i, o: seen.update(k=o))
    layer.mask.register_forward_hook(lambda m, i, o: seen.update(out=o))
    with torch.no_grad():
        layer(x)
    assert seen["a"].shape == (2, 1, 1, 5, 1)  # one gate per token
    k = seen["k"].reshape(2, 1, 5, 1, 8).transpose(2, 3)
    assert torch.equal(seen["out"], seen["a"] * k)


def test_neuron_class_is_a_constructor_argument() -> None:
    layer = SpikingSelfAttention(8, 2, neuron=IF, neuron_kwargs={"reset": "subtract"})
    assert all(isinstance(m, IF) for m in (layer.q_neuron, layer.attn_neuron, layer.proj_neuron))
    assert layer.attn_neuron.threshold == 0.5 and layer.q_neuron.threshold == 1.0
    assert layer(_spikes(2, 1, 3, 8)).shape == (2, 1, 3, 8)


def test_token_batch_norm_normalises_over_tokens() -> None:
    bn = TokenBatchNorm(4)
    y = bn(torch.randn(3, 2, 5, 4) * 3 + 1)
    assert torch.allclose(y.mean((0, 1, 2)), torch.zeros(4), atol=1e-5)


# -- SpikingJelly, same weights ----------------------------------------------------------


def _sj():
    return pytest.importorskip("spikingjelly.activation_based.layer.attention",
                               reason="spikingjelly (the 'bench' extra) is not installed")


def _randomise_bns(*modules: nn.Module) -> None:
    g = torch.Generator().manual_seed(5)
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g, dtype=m.running_mean.dtype) * .1)
                m.running_var.copy_(torch.rand(n, generator=g, dtype=m.running_var.dtype) + .5)
                m.weight.data.copy_(torch.rand(n, generator=g, dtype=m.weight.dtype) + .5)
                m.bias.data.copy_(torch.randn(n, generator=g, dtype=m.bias.dtype) * .2 + .7)


def _copy_linear_bn(ours: nn.Sequential, conv: nn.Module, bn: nn.Module, rows: slice) -> None:
    ours[0].weight.data.copy_(conv.weight.data[rows].reshape(ours[0].weight.shape))
    if ours[0].bias is not None:
        bias = conv.bias.data[rows] if conv.bias is not None else 0.0
        ours[0].bias.data.copy_(torch.as_tensor(bias, dtype=ours[0].bias.dtype))
    for name in ("weight", "bias"):
        getattr(ours[1], name).data.copy_(getattr(bn, name).data[rows])
    for name in ("running_mean", "running_var"):
        getattr(ours[1], name).copy_(getattr(bn, name)[rows])


def test_ssa_equals_spikingjelly() -> None:
    sj = _sj()
    torch.manual_seed(3)
    dim, heads = 32, 4
    theirs = sj.SpikingSelfAttention(dim, heads).double()
    ours = SpikingSelfAttention(dim, heads).double()
    with torch.no_grad():
        for c in (theirs.qkv_conv_bn[0], theirs.proj_conv_bn[0]):
            c.weight.normal_(0, 0.3)
        _randomise_bns(theirs)
        conv, bn = theirs.qkv_conv_bn
        for i, proj in enumerate((ours.q, ours.k, ours.v)):
            _copy_linear_bn(proj, conv, bn, slice(i * dim, (i + 1) * dim))
        _copy_linear_bn(ours.proj, theirs.proj_conv_bn[0], theirs.proj_conv_bn[1], slice(None))
    theirs.eval(), ours.eval()
    x = _spikes(4, 2, 20, dim, p=0.4).double()  # [T, B, N, D]
    with torch.no_grad():
        ref = theirs(x.transpose(-1, -2).contiguous()).transpose(-1, -2)
        out = ours(x)
    assert ref.abs().sum() > 0
    assert torch.equal(out, ref)


def test_sdsa_equals_spikingjelly() -> None:
    sj = _sj()
    torch.manual_seed(4)
    dim, heads, side = 16, 2, 3
    theirs = sj.SpikeDrivenSelfAttention(dim, heads).double()
    ours = SpikeDrivenSelfAttention(dim, heads).double()
    with torch.no_grad():
        for name in ("q", "k", "v", "proj"):
            getattr(theirs, f"{name}_conv").weight.normal_(0, 0.4)
        _randomise_bns(theirs)
        for name in ("q", "k", "v", "proj"):
            _copy_linear_bn(getattr(ours, name), getattr(theirs, f"{name}_conv"),
                            getattr(theirs, f"{name}_bn"), slice(None))
    theirs.eval(), ours.eval()
    x = (torch.randn(4, 2, dim, side, side, dtype=torch.float64) * 1.5 + 0.8)
    tokens = x.flatten(3).transpose(-1, -2)  # [T, B, N, D]
    with torch.no_grad():
        ref = (theirs(x) - x).flatten(3).transpose(-1, -2)
        out = ours(tokens)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["token", "channel"])
def test_qk_attention_equals_spikingjelly(kind: str) -> None:
    sj = _sj()
    torch.manual_seed(6)
    dim, heads = 16, 2
    theirs = sj.QKAttention(dim, heads, qka_type=kind).double()
    ours = QKAttention(dim, heads, kind=kind).double()
    with torch.no_grad():
        for c in (theirs.qk_conv_bn[0], theirs.proj_conv_bn[0]):
            c.weight.normal_(0, 0.4)
        _randomise_bns(theirs)
        conv, bn = theirs.qk_conv_bn
        _copy_linear_bn(ours.q, conv, bn, slice(0, dim))
        _copy_linear_bn(ours.k, conv, bn, slice(dim, 2 * dim))
        _copy_linear_bn(ours.proj, theirs.proj_conv_bn[0], theirs.proj_conv_bn[1], slice(None))
    theirs.eval(), ours.eval()
    x = _spikes(4, 2, 12, dim, p=0.5).double()
    with torch.no_grad():
        ref = theirs(x.transpose(-1, -2).contiguous()).transpose(-1, -2)
        out = ours(x)
    assert ref.abs().sum() > 0
    assert torch.equal(out, ref)
