"""Meta-SpikeFormer and the Spike-driven Transformer's CIFAR models: parameter counts against
the papers' tables, the SDSA-3 arithmetic, the blocks' structure, and the energy counter's
pricing of both SDSA variants."""

from __future__ import annotations

import pytest
import torch

import snn
from snn.models import count_parameters, meta_spikeformer_imagenet, sdt_cifar10, sdt_cifar100
from snn.models.meta_spikeformer import MetaSDSA, MetaSpikeFormer
from snn.neurons import IF

_META = "Spike-driven Transformer V2, ICLR 2024, ImageNet table"
_SDT = "Spike-driven Transformer, NeurIPS 2023, CIFAR table"
# (builder, options, millions in the paper's table, decimals printed, exact count, where)
PUBLISHED = {
    "meta-15.1M": (meta_spikeformer_imagenet, {}, 15.1, 1, 15_112_208, _META),
    "meta-31.3M": (meta_spikeformer_imagenet, {"widths": (96, 192, 384, 480)}, 31.3, 1,
                   31_333_864, _META),
    "meta-55.4M": (meta_spikeformer_imagenet, {"widths": (128, 256, 512, 640)}, 55.4, 1,
                   55_350_248, _META),
    "sdt-2-512-cifar100": (sdt_cifar100, {}, 10.28, 2, 10_279_588, _SDT),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_equals_the_papers_table(name: str) -> None:
    builder, options, millions, decimals, exact, _ = PUBLISHED[name]
    with torch.device("meta"):  # no memory, no initialisation: counts only
        count = count_parameters(builder(**options))
    assert count == exact
    # the table rounds to `decimals`: the count must round to the printed value
    assert round(count / 1e6, decimals) == pytest.approx(millions), f"{name}: {count}"


def test_sdt_cifar10_differs_from_cifar100_by_the_head_only() -> None:
    with torch.device("meta"):
        ten, hundred = count_parameters(sdt_cifar10()), count_parameters(sdt_cifar100())
        small = count_parameters(sdt_cifar10(embed_dim=256))
    assert hundred - ten == 90 * (512 + 1)
    assert round(small / 1e6, 2) == 2.57  # the 2-256 model of the paper's tables


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    t, b, c = x.shape[:3]
    return x.reshape(t, b, h, c // h, -1).transpose(-2, -1)  # [T, B, h, N, d]


def test_sdsa3_is_scaled_q_ktv_per_head() -> None:
    torch.manual_seed(0)
    attn = MetaSDSA(8, num_heads=2)
    seen: dict[str, torch.Tensor] = {}
    for name in ("q_neuron", "k_neuron", "v_neuron"):
        getattr(attn, name).register_forward_hook(
            lambda m, i, o, name=name: seen.__setitem__(name, o))
    attn.attn_neuron.register_forward_pre_hook(lambda m, i: seen.__setitem__("attn_in", i[0]))
    x = torch.randn(2, 3, 8, 4, 4) * 2
    out = attn(x)
    assert out.shape == x.shape
    q, k, v = (_heads(seen[n], 2) for n in ("q_neuron", "k_neuron", "v_neuron"))
    assert set(torch.unique(torch.cat([q, k, v]).flatten()).tolist()) <= {0.0, 1.0}
    expected = 0.125 * q @ (k.transpose(-2, -1) @ v)  # [T, B, h, N, d]
    expected = expected.transpose(-2, -1).reshape(x.shape)
    torch.testing.assert_close(seen["attn_in"], expected)
    assert attn.attn_neuron.threshold == 0.5


def test_sdsa1_is_the_mask_of_column_sums() -> None:
    torch.manual_seed(1)
    attn = MetaSDSA(8, num_heads=2, attention="sdsa1")
    seen: dict[str, torch.Tensor] = {}
    for name in ("q_neuron", "attn_neuron"):
        getattr(attn, name).register_forward_hook(
            lambda m, i, o, name=name: seen.__setitem__(name, o))
    attn.proj.register_forward_pre_hook(lambda m, i: seen.__setitem__("proj_in", i[0]))
    attn(torch.randn(2, 3, 8, 4, 4) * 2)
    q = _heads(seen["q_neuron"], 2)
    expected = (seen["attn_neuron"] * q).transpose(-2, -1).reshape(seen["proj_in"].shape)
    torch.testing.assert_close(seen["proj_in"], expected)


def test_stage_widths_and_resolution() -> None:
    model = MetaSpikeFormer(num_classes=5, widths=(8, 16, 16, 24), num_heads=2,
                            conv_depths=(1, 0, 0), depths=(0, 1))
    shapes = []
    for stage in model.stages:
        stage.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[2:])))
    with torch.no_grad():
        out = model(torch.rand(2, 1, 3, 32, 32))
    assert out.shape == (2, 1, 5)
    # stem /2 to C1/2, then /2, /2, /2 and /1 (the authors' strides)
    assert shapes == [(4, 16, 16), (8, 8, 8), (16, 4, 4), (16, 2, 2), (24, 2, 2)]


def test_neuron_class_reaches_every_neuron_and_reset_repeats() -> None:
    model = MetaSpikeFormer(num_classes=4, widths=(8, 16, 16, 16), num_heads=2,
                            conv_depths=(1, 0, 0), depths=(1, 0), neuron=IF).eval()
    assert {type(m) for _, m in snn.neurons.neurons_of(model)} == {IF}
    x = torch.rand(2, 1, 3, 16, 16)
    with torch.no_grad():
        a = model(x)
        snn.reset(model)
        assert torch.equal(model(x), a)


def test_bad_configuration_and_input_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="widths"):
        MetaSpikeFormer(widths=(8, 16, 32))
    with pytest.raises(ValueError, match="conv_depths"):
        MetaSpikeFormer(widths=(8, 16, 16, 16), depths=(1,))
    with pytest.raises(ValueError, match="num_heads"):
        MetaSDSA(10, num_heads=4)
    with pytest.raises(ValueError, match="attention"):
        MetaSDSA(8, num_heads=2, attention="sdsa9")
    model = MetaSpikeFormer(widths=(8, 16, 16, 16), num_heads=2, conv_depths=(0, 0, 0),
                            depths=(0, 0))
    with pytest.raises(ValueError, match=r"MetaSpikeFormer.*T, B, 3, H, W"):
        model(torch.rand(2, 3, 16, 16))


@pytest.mark.parametrize("attention", MetaSDSA.ATTENTIONS)
def test_sdsa_variants_are_counted_from_their_spikes(attention: str) -> None:
    # the counter prices each variant's spike-spike arithmetic by the rules of
    # snn.energy.rules, checked here against the same sums taken by hand over the block's own
    # Q, K, V spikes (4x4 map: N = 16 tokens > d = 4 channels per head)
    from snn.energy import count_ops

    torch.manual_seed(2)
    attn = MetaSDSA(8, num_heads=2, attention=attention)
    seen: dict[str, torch.Tensor] = {}
    for name in ("q_neuron", "k_neuron", "v_neuron"):
        getattr(attn, name).register_forward_hook(
            lambda m, i, o, name=name: seen.__setitem__(name, o.detach()))
    counts = count_ops(attn, torch.randn(2, 3, 8, 4, 4) * 2)
    q, k, v = (_heads(seen[n], 2).double() for n in ("q_neuron", "k_neuron", "v_neuron"))
    assert q.sum() > 0 and k.sum() > 0 and v.sum() > 0
    if attention == "sdsa3":
        ktv = k.transpose(-2, -1) @ v  # K^T V first, then Q (K^T V)
        by_hand = (k.sum(-1) * v.sum(-1)).sum() + (q.sum(-2) * (ktv != 0).sum(-1)).sum()
        layer = counts.layer("qkv")
        assert layer.dense_macs == (2 * 3 * 2) * (2 * 16 * 4 * 4)  # 2 N d^2 per (T, B, head)
    else:
        by_hand = (k * v).sum()  # the column sum of K (x) V; the mask is free
        layer = counts.layer("column_sum")
        assert counts.layer("mask").acs == counts.layer("mask").macs == 0
    assert layer.calls == 1 and layer.macs == 0 and layer.acs == round(float(by_hand))
