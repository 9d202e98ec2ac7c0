"""Models built from every supported operation convert, and the SNN approaches the ANN."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from converter_models import FunctionalNet, ResidualNet, randomise_bn
from torch import nn

import snn
from snn.converters import IFActivation, SpikingMaxPool, convert


class Conv1dNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 6, 3)
        self.bn = nn.BatchNorm1d(6)
        self.pool = nn.AvgPool1d(2)
        self.act = nn.ReLU6()
        self.fc = nn.Linear(6 * 7, 4)
        self.drop = nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.bn(self.conv(x))))
        return self.fc(self.drop(torch.reshape(x, (x.shape[0], -1))))


class ClipNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.bn = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 16)
        self.ht = nn.Hardtanh(0.0, 2.0)
        self.fc4 = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.bn(self.fc1(x)))
        x = F.hardtanh(self.fc2(x), 0.0, 1.5)
        x = self.ht(self.fc3(x).clamp(0, 3.0))
        return self.fc4(x.relu_())


class InplaceNet(nn.Module):
    """The result of an in-place ReLU is ignored; later code reads the mutated tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc1(x)
        y.relu_()
        return self.fc2(y)


CASES = {
    "inplace": (InplaceNet, (8,)),
    "residual": (ResidualNet, (2, 8, 8)),
    "functional": (FunctionalNet, (1, 8, 8)),
    "conv1d": (Conv1dNet, (3, 16)),
    "clip": (ClipNet, (8,)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_converts_and_approaches_ann(case: str) -> None:
    build, shape = CASES[case]
    torch.manual_seed(1)
    model = randomise_bn(build())
    x = torch.rand(48, *shape)
    net, report = convert(model, x, method="max")
    assert net.neurons(), "no activation was converted"
    with torch.no_grad():
        ann = model(x)
        # max normalisation clips nothing on the calibration data: the analog network is the ANN
        torch.testing.assert_close(net.analog(x), ann, rtol=1e-4, atol=1e-5)
        out = net.simulate(x, 256)
    scale = ann.abs().mean()
    err = [float((out[t - 1] - ann).abs().mean() / scale) for t in (16, 64, 256)]
    assert err[2] < 0.05, err
    assert err[2] < err[0], err
    # the report names every activation with its original operation
    ops = {e.op for e in report.layers if e.action.startswith("IF")}
    assert ops


def test_functional_forms_are_all_converted() -> None:
    net, report = convert(FunctionalNet(), torch.rand(16, 1, 8, 8))
    ops = sorted(e.op for e in report.layers if e.action.startswith("IF"))
    assert ops == ["F.relu", "Tensor.relu", "torch.clamp", "torch.relu"]
    pools = [e for e in report.layers if "max pool" in e.action]
    assert [p.op for p in pools] == ["nn.MaxPool2d", "F.max_pool2d"]
    assert len(net.max_pools()) == 2
    assert all(isinstance(m, SpikingMaxPool) for m in net.max_pools().values())


def test_shared_relu_module_gets_one_neuron_per_call_site() -> None:
    net, report = convert(randomise_bn(ResidualNet()), torch.rand(16, 2, 8, 8))
    neurons = net.neurons()
    assert len(neurons) == 3  # stem + two call sites of the shared self.relu
    assert len({id(m) for m in neurons.values()}) == 3
    folded = [e.name for e in report.layers if e.action.startswith("folded")]
    assert sorted(folded) == ["bn1", "bn2", "short.1", "stem.1"]


def test_time_chunk_does_not_change_results() -> None:
    model = randomise_bn(ResidualNet())
    x = torch.rand(8, 2, 8, 8)
    net, _ = convert(model, x)
    a = net.simulate(x, 20)
    net.time_chunk = 1
    b = net.simulate(x, 20)
    net.time_chunk = 7
    c = net.simulate(x, 20)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_simulation_starts_from_rest_and_snn_reset_clears_all_state() -> None:
    x = torch.rand(4, 1, 8, 8)
    net, _ = convert(FunctionalNet(), x)
    first = net(x, steps=5)
    again = net(x, steps=5)
    torch.testing.assert_close(first, again)
    assert any(m.state is not None for m in net.max_pools().values())
    snn.reset(net)
    assert all(m.state is None for m in net.max_pools().values())
    assert all(m.neuron.state is None for m in net.neurons().values())


def test_thresholds_channelwise_and_layerwise() -> None:
    model = randomise_bn(ResidualNet())
    x = torch.rand(32, 2, 8, 8)
    net_l, _ = convert(model, x)
    net_c, rep_c = convert(model, x, channelwise=True)
    for name, layer in net_l.neurons().items():
        assert layer.threshold.dim() == 0
        per = net_c.graph.get_submodule(name).threshold
        assert per.shape == layer.param_shape
        # the layer scale lies between the smallest and largest channel scale
        assert float(per.min()) <= float(layer.threshold) <= float(per.max())
    assert isinstance(rep_c.layer("stem.2").threshold, list)


def test_poisson_encoding() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))
    x = torch.rand(64, 6)
    net, _ = convert(model, x, encoding="poisson", method="max")
    net.generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        out = net(x, steps=400)
        ann = model(x)
    assert float((out - ann).abs().mean() / ann.abs().mean()) < 0.1
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        net(x - 0.5, steps=4)


def test_if_activation_uses_plain_if_neuron() -> None:
    net, _ = convert(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), torch.rand(8, 3))
    (layer,) = net.neurons().values()
    assert isinstance(layer, IFActivation)
    assert isinstance(layer.neuron, snn.IF) and layer.neuron.reset == "subtract"


def test_monitor_records_the_converted_neurons() -> None:
    model = randomise_bn(ResidualNet())
    x = torch.rand(4, 2, 8, 8)
    net, _ = convert(model, x)
    with snn.Monitor(net) as mon:
        net.simulate(x, 6)
    rates = mon.firing_rates()
    assert sorted(rates) == sorted(f"graph.{n}.neuron" for n in net.neurons())
    assert mon.spikes(next(iter(rates))).shape[:2] == (6, 4)
