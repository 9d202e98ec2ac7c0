"""Hand counts of the rules for converted transformer modules and residual additions
(snn/energy/rules_converted.py)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import snn
from snn.converters import convert
from snn.converters.expectation import Expectation, SignedIFActivation
from snn.energy import OpCounter, find_rule


def _count(module: nn.Module, *args, **kwargs):
    counter = OpCounter(module)
    with counter, torch.no_grad():
        module(*args, **kwargs)
    return counter.counts().layer("")


def test_signed_neuron_hand_count() -> None:
    n = SignedIFActivation(1.0, levels=1)
    assert find_rule(n)[0] == "neuron"
    x = torch.tensor([[0.6, 0.0, -0.6]]).repeat(2, 1)  # 2 steps of 1 sample
    c = _count(n, x, 2)
    # step 1: v = 0.6 -> +1, 0, -0.6 -> -1; step 2: v = 0.2, 0, -0.2: silent
    assert (c.neuron_updates, c.active_updates, c.spikes) == (6, 4, 2)
    assert (c.state_reads, c.state_writes, c.output_writes, c.state_vars) == (6, 6, 2, 1)


def test_spike_driven_product_hand_count() -> None:
    m = Expectation(torch.matmul, [0, 1], "torch.matmul")
    assert find_rule(m)[0] == "expectation"
    a = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]])  # 2 steps, [2, 2]
    b = torch.tensor([[[1.0], [0.0]], [[0.0], [1.0]]])  # 2 steps, [2, 1]
    c = _count(m, a, b, steps=2)
    # events of a: 2, each adds a row of S^B (1 column): 2; events of b: 2, each a column of
    # S^A (2 rows): 4; pairs meeting in the product: step 1 (k=0), step 2 (k=1): 2
    assert c.acs == 2 + 4 + 2
    assert c.dense_macs == c.dense_synops == 2 * 2 * 2 * 1  # steps x n x k x m
    assert c.other_adds == 4 + 4  # running sums of the 4 events; differences of 4 outputs
    assert c.other_macs == 4  # P_t / t per output element and step
    assert c.output_writes == 4 and c.macs == 0


def test_nonlinear_expectation_hand_count() -> None:
    m = Expectation(nn.GELU(), [0], "nn.GELU")
    x = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 1.0]])  # 2 steps of 1 sample, 3 features
    c = _count(m, x, steps=2)
    assert c.other_adds == 3 + 6  # running sum of 3 nonzero inputs; 6 output differences
    assert c.other_macs == 6 + 6  # running mean of 6 inputs; t f(mean) for 6 outputs
    assert c.acs == c.macs == 0
    assert "left to its own rule" in c.reason


def test_a_converted_transformer_is_counted() -> None:
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln = nn.LayerNorm(8)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.head = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.ln(x)
            a, _ = self.attn(h, h, h, need_weights=False)
            return self.head((x + a).mean(1))

    x = torch.randn(4, 5, 8)
    net, _ = convert(Net().eval(), x, time_chunk=8)
    counter = OpCounter(net)
    with counter, torch.no_grad():
        net(x, steps=8)
    counts = counter.counts()
    kinds = {layer.type: layer.kind for layer in counts.layers}
    assert kinds["Expectation"] == "expectation" and kinds["SignedIFActivation"] == "neuron"
    products = [layer for layer in counts.layers if layer.type == "Expectation" and layer.acs]
    assert len(products) == 2  # Q K^T and softmax V
    spikes = sum(layer.spikes for layer in counts.layers if layer.type == "SignedIFActivation")
    assert spikes > 0
    # the packed input projection of the attention is three counted Linear layers
    projections = [counts.layer(f"graph.attn.{p}_proj") for p in "qkv"]
    assert all(x.kind == "synaptic" and x.synops > 0 for x in projections)
    assert not any("linear" in f for f in counts.functional)
    # the attention's 1/sqrt(d) is a constant scale, folded; the token mean is real work
    assert sorted(counts.functional) == ["graph: mean"]
    snn.reset(net)
    copied = copy.deepcopy(net)  # the declaration survives a copy
    with OpCounter(copied) as counter, torch.no_grad():
        copied(x, steps=8)
    assert sorted(counter.counts().functional) == ["graph: mean"]


class _SignedThenLinear(nn.Module):
    def __init__(self, levels: int) -> None:
        super().__init__()
        self.neuron = SignedIFActivation(0.5, levels=levels)
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        return self.fc(self.neuron(x, steps))


def test_linear_fed_by_signed_spikes_of_one_amplitude_does_accumulates() -> None:
    # threshold 0.5, one threshold pair: spikes are +-0.5 (not binary values, but events of one
    # magnitude: 0.5 folds into the weights, the sign makes the accumulate a subtraction)
    m = _SignedThenLinear(levels=1)
    assert m.neuron.fixed_amplitude_events
    x = torch.tensor([[0.3, 0.0, -0.3]]).repeat(2, 1)  # 2 steps of 1 sample
    spikes = SignedIFActivation(0.5, levels=1)(x, 2)
    counter = OpCounter(m)
    with counter, torch.no_grad():
        m(x, 2)
    # step 1: v = 0.6, 0, -0.6 -> +0.5, 0, -0.5; step 2: v = 0.2, 0, -0.2: silent
    assert spikes.tolist() == [[0.5, 0.0, -0.5], [0.0, 0.0, 0.0]]
    fc = counter.counts().layer("fc")
    assert fc.acs == 2 * 2  # 2 events x 2 output synapses
    assert fc.macs == 0 and fc.input_reads == 2


def test_linear_fed_by_multi_amplitude_spikes_does_macs() -> None:
    m = _SignedThenLinear(levels=2)  # amplitudes 0.5 and 0.25: graded values
    assert not m.neuron.fixed_amplitude_events
    x = torch.tensor([[0.3, 0.0, -0.3]]).repeat(2, 1)
    counter = OpCounter(m)
    with counter, torch.no_grad():
        m(x, 2)
    fc = counter.counts().layer("fc")
    assert fc.acs == 0 and fc.macs > 0


class _TinyResidual(nn.Module):
    """h = relu(fc1 x); y = relu(fc2 h + h); out = fc3 y - fc4 y (diagonal weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.fc4 = (nn.Linear(2, 2, bias=False) for _ in range(4))
        with torch.no_grad():
            for fc, w in ((self.fc1, 1.0), (self.fc2, 0.25), (self.fc3, 0.5), (self.fc4, 0.25)):
                fc.weight.copy_(w * torch.eye(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        y = torch.relu(self.fc2(h) + h)
        return self.fc3(y) - self.fc4(y)


def test_residual_additions_of_a_converted_network_by_hand() -> None:
    x = torch.tensor([[1.0, 0.5]])
    net, _ = convert(_TinyResidual().eval(), x, method="max")
    adds = {n: type(m).__name__ for n, m in net.graph.named_modules() if n in ("add", "sub")}
    assert adds == {"add": "ResidualAdd", "sub": "ResidualAdd"}
    counter = OpCounter(net)
    with counter, torch.no_grad():
        net(x, steps=4)
    counts = counter.counts()
    assert counts.uncounted == [] and counts.functional == {}
    # relu: threshold 1 (max), v0 = 0.5, inputs 1.0 and 0.5 per step: feature 0 fires at every
    # step (4 spikes), feature 1 at steps 1 and 3 (v = 1.0, 0.5, 1.0, 0.5): 6 events
    assert counts.layer("graph.relu.neuron").spikes == 6
    add = counts.layer("graph.add")  # fc2 h (graded current) + h (6 spike events)
    assert add.kind == "elementwise"
    assert add.other_adds == 6  # one accumulate per event onto the current
    assert (add.acs, add.macs) == (0, 0)  # not a synaptic operation (NeuroBench's convention)
    assert add.dense_other_adds == 4 * 2  # the ANN's addition: one per element and step
    # memory: the current read once per element (8) and each event (6); per event the
    # amplitude (weight) and a read and write of the sum; the sum written once per element
    assert (add.input_reads, add.weight_reads, add.state_reads, add.state_writes) == (
        8 + 6, 6, 6, 6)
    assert add.output_writes == 8
    sub = counts.layer("graph.sub")  # fc3 y - fc4 y: two graded currents
    assert sub.other_adds == 8 and sub.dense_other_adds == 8  # one per element and step
    assert (sub.input_reads, sub.output_writes) == (16, 8)
    # priced: the SNN's additions as accumulates; the ANN adds each element once per sample
    report = counter.report("cmos45_fp32")
    snn = {e.name: e for e in report.layers}
    ann = {e.name: e for e in report.ann_layers}
    pj = 1e-12
    assert snn["graph.add"].compute == pytest.approx(6 * 0.9 * pj)
    assert snn["graph.sub"].compute == pytest.approx(8 * 0.9 * pj)
    assert ann["graph.add"].compute == pytest.approx(2 * 0.9 * pj)
    assert ann["graph.sub"].compute == pytest.approx(2 * 0.9 * pj)


def test_spike_plus_spike_and_broadcast_are_counted_per_event() -> None:
    from snn.converters import ResidualAdd

    assert find_rule(ResidualAdd())[0] == "elementwise"
    a = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # 3 binary events
    b = torch.tensor([[0.0, 1.0, 0.0]])  # 1 binary event, broadcast over 2 rows
    c = _count(ResidualAdd(), a, b)
    assert c.other_adds == 3 + 2  # every event reaches one output element per row
    assert c.dense_other_adds == 6 and c.output_writes == 0
    g = _count(ResidualAdd("sub"), a * 0.3, 2.0, 0.5)  # graded minus a constant, alpha
    assert g.other_adds == 6 and g.input_reads == 6 and g.output_writes == 6


class _BasicBlock(nn.Module):
    """A ResNet basic block with a projection shortcut, written as torchvision writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.down = nn.Sequential(nn.Conv2d(2, 4, 1, bias=False), nn.BatchNorm2d(4))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = torch.relu(x)
        out = torch.relu(self.bn1(self.conv1(identity)))
        out = self.bn2(self.conv2(out))
        out += self.down(identity)
        out = torch.relu(out)
        return self.head(self.pool(out).flatten(1))


def test_a_converted_resnet_block_has_no_uncounted_addition() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 2, 5, 5)
    net, _ = convert(_BasicBlock().eval(), x)
    counter = OpCounter(net)
    with counter, torch.no_grad():
        net(x, steps=4)
    counts = counter.counts()
    assert counts.uncounted == [] and counts.functional == {}
    (add,) = [layer for layer in counts.layers if layer.type == "ResidualAdd"]
    # two graded currents (conv2 and the projection): one addition per element and step
    assert add.other_adds == add.dense_other_adds == 4 * 4 * 4 * 5 * 5
