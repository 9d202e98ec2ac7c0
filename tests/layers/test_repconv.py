"""RepConv and its padded batch norm: the re-parameterisation into one 3x3 convolution."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snn import reset as snn_reset
from snn.layers import TimeDistributed
from snn.layers.repconv import BatchNormPad, RepConv


def _random_statistics(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 2)
            m.bias.data.uniform_(-1, 1)


def test_padded_border_is_the_norms_image_of_zero() -> None:
    torch.manual_seed(0)
    bn = BatchNormPad(3, pad=2)
    _random_statistics(bn)
    bn.eval()
    x = torch.randn(2, 3, 4, 5)
    out = bn(x)
    assert out.shape == (2, 3, 8, 9)
    torch.testing.assert_close(out[:, :, 2:-2, 2:-2], nn.functional.batch_norm(
        x, bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps))
    zero = bn(torch.zeros(1, 3, 1, 1))  # the image of zero, everywhere
    torch.testing.assert_close(out[:, :, :2], zero[:, :, :1, :1].expand(2, 3, 2, 9))


def test_repconv_equals_its_fused_3x3_convolution() -> None:
    torch.manual_seed(0)
    rep = RepConv(4, 6)
    _random_statistics(rep)
    rep.eval()
    x = torch.randn(2, 3, 4, 5, 7)
    fused = rep.fused()
    assert fused.kernel_size == (3, 3) and fused.padding == (1, 1)
    torch.testing.assert_close(TimeDistributed(fused)(x), rep(x), atol=1e-5, rtol=1e-5)


def test_repconv_gradients_reach_every_weight() -> None:
    rep = RepConv(3, 5)
    rep(torch.randn(2, 2, 3, 4, 4)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rep.parameters())


def test_negative_pad_is_an_error() -> None:
    with pytest.raises(ValueError, match="pad"):
        BatchNormPad(3, pad=-1)


def test_fused_meta_spikeformer_keeps_its_outputs_and_costs_less() -> None:
    from snn.energy import count_ops
    from snn.layers.repconv import fuse_repconvs
    from snn.models.meta_spikeformer import MetaSpikeFormer

    torch.manual_seed(0)
    model = MetaSpikeFormer(num_classes=4, widths=(8, 16, 16, 16), num_heads=2,
                            conv_depths=(0, 0, 0), depths=(1, 0))
    _random_statistics(model)
    model.eval()
    x = (torch.rand(2, 1, 3, 16, 16) < 0.5).float()
    with torch.no_grad():
        expected = model(x)
        assert expected.abs().sum() > 0  # the head's neuron fired: the comparison means something
        before = count_ops(model, x)
        snn_reset(model)
        fused = fuse_repconvs(model)
        assert not any(isinstance(m, (RepConv, BatchNormPad)) for m in fused.modules())
        torch.testing.assert_close(fused(x), expected, atol=1e-5, rtol=1e-5)
        snn_reset(fused)
        after = count_ops(fused, x)
    norm_macs = [sum(layer.other_macs for layer in c.layers) for c in (before, after)]
    assert norm_macs[1] < norm_macs[0]
    assert not [layer.name for layer in after.layers if layer.kind == "uncounted"]
