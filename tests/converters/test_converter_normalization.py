"""Normalisation methods and the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from snn.converters import NORMALIZERS, convert, default_passes, percentile
from snn.converters.normalization import scale_of


@pytest.mark.parametrize("q", [0.0, 12.5, 50.0, 99.0, 99.9, 100.0])
@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_percentile_matches_numpy(q: float, n: int) -> None:
    values = torch.rand(n, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    assert float(percentile(values, q)) == pytest.approx(np.percentile(values.numpy(), q))


def test_percentile_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile(torch.tensor([]), 50)
    with pytest.raises(ValueError, match="percentile"):
        percentile(torch.ones(3), 101)


@pytest.mark.parametrize("method", sorted(NORMALIZERS))
def test_every_method_ignores_zeros_and_bounds_by_max(method: str) -> None:
    values = torch.cat([torch.zeros(5000), torch.linspace(0.001, 1.0, 1000)])
    s = scale_of(values, method, 99.0)
    assert 0.98 <= s <= 1.0  # zeros would drag a percentile to 0
    assert scale_of(torch.zeros(4), method, 99.0) is None
    with pytest.raises(ValueError, match="unknown"):
        scale_of(values, "mean", 99.0)


def test_thresholds_follow_the_method() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))
    x = torch.randn(512, 4)
    with torch.no_grad():
        act = torch.relu(model[0](x))
    positive = act[act > 0]
    net_max, rep = convert(model, x, method="max")
    net_p, _ = convert(model, x, method="percentile", percentile=90.0)
    assert float(net_max.graph.get_submodule("1").threshold) == pytest.approx(float(act.max()))
    expected = np.percentile(positive.numpy(), 90.0)
    assert float(net_p.graph.get_submodule("1").threshold) == pytest.approx(expected, rel=1e-5)
    entry = rep.layer("1")
    assert entry.op == "nn.ReLU" and entry.threshold == pytest.approx(float(act.max()))
    assert entry.stats["active_fraction"] == pytest.approx(float((act > 0).float().mean()))
    text = str(rep)
    assert "IF neuron" in text and "trace" in text


def test_dead_layer_gets_unit_threshold_and_a_note() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.fill_(-1.0)
    net, rep = convert(model, torch.rand(8, 3))
    assert float(net.graph.get_submodule("1").threshold) == 1.0
    assert any("never activates" in n for n in rep.notes)


def test_custom_pass_can_inspect_and_extend_the_pipeline() -> None:
    from snn.converters import ConversionPass

    seen = {}

    def spy(ctx) -> None:
        seen["activations"] = sorted(ctx.activations)
        for entry in ctx.thresholds.values():
            entry["threshold"] = entry["threshold"] * 2

    passes = default_passes()
    names = [p.name for p in passes]
    assert names == ["trace", "check_supported", "check_batch", "fold_batchnorm",
                     "remove_identities", "mark_activations", "mark_nonlinear",
                     "collect_statistics", "normalise",
                     "replace_activations", "build_network", "calibrate"]
    passes.insert(names.index("replace_activations"), ConversionPass("double", spy))
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.rand(16, 3)
    net, rep = convert(model, x, passes=passes, method="max")
    ref, _ = convert(model, x, method="max")
    assert seen["activations"] == ["1"]
    assert float(net.graph.get_submodule("1").threshold) == pytest.approx(
        2 * float(ref.graph.get_submodule("1").threshold))
    assert "double" in [n for n, _ in rep.passes]
