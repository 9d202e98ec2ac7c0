"""BatchNorm folding and identity removal are exact."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snn.converters import ChannelAffine, ConversionConfig, ConversionContext, fold_bn_into
from snn.converters.passes import check_supported, fold_batchnorm, remove_identities, trace_model


def _randomise_bn(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.2, 3)
            if m.affine:
                m.weight.data.uniform_(-2, 2)
                m.bias.data.uniform_(-1, 1)
    return model.eval()


@pytest.mark.parametrize(
    ("layer", "bn", "shape"),
    [
        (nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5), (4, 3, 6, 6)),
        (nn.Conv2d(4, 6, 3, groups=2, bias=False), nn.BatchNorm2d(6), (4, 4, 6, 6)),
        (nn.Conv1d(3, 5, 3), nn.BatchNorm1d(5), (4, 3, 10)),
        (nn.Linear(7, 5), nn.BatchNorm1d(5), (4, 7)),
        (nn.Linear(7, 5), nn.BatchNorm1d(5, affine=False), (4, 7)),
    ],
)
def test_fold_bn_into_is_exact(layer: nn.Module, bn: nn.Module, shape: tuple[int, ...]) -> None:
    model = _randomise_bn(nn.Sequential(layer, bn)).double()
    x = torch.randn(shape, dtype=torch.float64)
    fused = fold_bn_into(model[0], model[1])
    torch.testing.assert_close(fused(x), model(x), rtol=1e-12, atol=1e-12)


def _run_passes(model: nn.Module, *passes) -> ConversionContext:
    ctx = ConversionContext(model=model, calibration=[], config=ConversionConfig())
    for p in (trace_model, check_supported, *passes):
        p(ctx)
    return ctx


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn_in = nn.BatchNorm2d(2)  # nothing before it to fold into
        self.conv = nn.Conv2d(2, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 4 * 4, 3)
        self.bn_fc = nn.BatchNorm1d(3)
        self.ident = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.relu(self.bn(self.conv(self.bn_in(x)))))
        x = nn.functional.dropout(x.flatten(1), 0.3, training=self.training)
        return self.ident(self.bn_fc(self.fc(x)))


def test_graph_after_folding_matches_model_exactly() -> None:
    model = _randomise_bn(_Net()).double()
    ctx = _run_passes(model, fold_batchnorm, remove_identities)
    gm = ctx.gm
    kinds = [type(m) for m in gm.modules()]
    assert not any(issubclass(k, (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.Identity))
                   for k in kinds)
    assert isinstance(gm.bn_in, ChannelAffine)
    x = torch.randn(5, 2, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(gm(x), model(x), rtol=1e-12, atol=1e-12)
    actions = {e.name: e.action for e in ctx.report.layers}
    assert actions["bn"] == "folded into conv"
    assert actions["bn_fc"] == "folded into fc"
    assert actions["bn_in"].startswith("per-channel affine")
    assert actions["drop"] == "removed" and actions["dropout"] == "removed"
    # the user's model is untouched
    assert isinstance(model.bn, nn.BatchNorm2d) and model.conv.weight is not gm.conv.weight


def test_conv_used_twice_is_not_folded() -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1)
            self.bn = nn.BatchNorm2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn(self.conv(x)) + self.conv(x)

    model = _randomise_bn(Shared()).double()
    ctx = _run_passes(model, fold_batchnorm)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(ctx.gm(x), model(x), rtol=1e-12, atol=1e-12)
    assert isinstance(ctx.gm.bn, ChannelAffine)
