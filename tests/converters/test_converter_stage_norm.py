"""Batch normalisation inserted for a fine-tuning stage and folded back after it."""

from __future__ import annotations

import torch
from torch import nn

from snn.converters import convert
from snn.converters.finetune import finetune
from snn.converters.stage_norm import StageNorm, fold_norms, insert_norms


def _cnn() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    ann = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 8),
        nn.ReLU(), nn.Linear(8, 3))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(96, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long() + (x[:, 0, 0, 0] > .8).long()
    with torch.no_grad():  # BatchNorm statistics away from the identity
        ann.train()
        ann(x * 3 + 1)
    ann.eval()
    return ann, x, y


def test_inserted_norms_are_the_identity_at_inference_and_fold_exactly() -> None:
    ann, x, _ = _cnn()
    net, _ = convert(ann, x, time_chunk=3)
    with torch.no_grad():
        ref = net(x, 3).clone()
    norms = insert_norms(net, x, 3)
    # three Conv/Linear layers feed IF neurons; the output layer feeds the readout
    assert len(norms) == 3 and all(isinstance(n, StageNorm) for n in norms)
    assert [n.dim for n in norms] == [1, 1, -1]
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x, 3), ref, atol=1e-5, rtol=1e-5)
        # in training mode each batch is normalised with its own statistics; the measured
        # statistics are those of the whole data, so one batch of all of it is the identity too
        net.train()
        torch.testing.assert_close(net(x, 3), ref, atol=1e-4, rtol=1e-4)
        net.eval()
        # a changed normalisation changes the output, and folding keeps the change exactly
        for n in norms:
            n.weight.mul_(1.5)
            n.bias.add_(0.1)
        changed = net(x, 3).clone()
    assert not torch.allclose(changed, ref)
    assert fold_norms(net) == 3
    assert not any(isinstance(m, StageNorm) for m in net.modules())
    with torch.no_grad():
        torch.testing.assert_close(net(x, 3), changed, atol=1e-5, rtol=1e-5)


def test_finetune_with_batch_norm_leaves_a_plain_converted_network() -> None:
    ann, x, y = _cnn()
    net, _ = convert(ann, x, time_chunk=2)
    names = sorted(n for n, _ in net.named_modules())
    stages = finetune(net, (x, y), (2, 1), epochs=[1, 1], lr=1e-2, batch_norm=True,
                      val_data=(x, y))
    assert len(stages) == 2
    assert sorted(n for n, _ in net.named_modules()) == names
    assert not any(isinstance(m, StageNorm) for m in net.modules())
    # the kept epoch's validation accuracy is that of the folded network
    with torch.no_grad():
        acc = int((net(x, 1).argmax(-1) == y).sum()) / len(y)
    assert abs(acc - stages[-1].val_accuracy) < 1e-9
