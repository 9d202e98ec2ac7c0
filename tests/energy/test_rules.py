"""Every entry of the rule table counts a real call; new entries must be added here."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snn.converters.expectation import Expectation, SignedIFActivation
from snn.converters.modules import ChannelAffine, ResidualAdd, SpikingMaxPool
from snn.energy import RULES, count_ops, find_rule
from snn.energy.rules import converter_rules
from snn.layers import (
    LegendreMemory,
    SpikingChannelMix,
    SpikingTimeMix,
    attention,
    norm,
    repconv,
)
from snn.neurons.base import BaseNeuron

FACTORIES = {
    nn.Linear: lambda: (nn.Linear(6, 3), (4, 6)),
    nn.Conv1d: lambda: (nn.Conv1d(2, 3, 3, padding=1), (2, 2, 7)),
    nn.Conv2d: lambda: (nn.Conv2d(2, 3, 3, stride=2), (2, 2, 7, 7)),
    nn.Conv3d: lambda: (nn.Conv3d(2, 3, 2), (1, 2, 4, 4, 4)),
    nn.MaxPool1d: lambda: (nn.MaxPool1d(2), (2, 3, 8)),
    nn.MaxPool2d: lambda: (nn.MaxPool2d(3, 2, 1), (2, 3, 7, 7)),
    nn.MaxPool3d: lambda: (nn.MaxPool3d(2), (1, 2, 4, 4, 4)),
    nn.AvgPool1d: lambda: (nn.AvgPool1d(3, 2, 1, ceil_mode=True), (2, 3, 8)),
    nn.AvgPool2d: lambda: (nn.AvgPool2d(2), (2, 3, 6, 6)),
    nn.AvgPool3d: lambda: (nn.AvgPool3d(2), (1, 2, 4, 4, 4)),
    nn.AdaptiveAvgPool1d: lambda: (nn.AdaptiveAvgPool1d(3), (2, 3, 7)),
    nn.AdaptiveAvgPool2d: lambda: (nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 5, 7)),
    nn.AdaptiveAvgPool3d: lambda: (nn.AdaptiveAvgPool3d(2), (1, 2, 3, 5, 4)),
    nn.AdaptiveMaxPool1d: lambda: (nn.AdaptiveMaxPool1d(3), (2, 3, 7)),
    nn.AdaptiveMaxPool2d: lambda: (nn.AdaptiveMaxPool2d(2), (2, 3, 5, 5)),
    nn.AdaptiveMaxPool3d: lambda: (nn.AdaptiveMaxPool3d(2), (1, 2, 3, 5, 4)),
    nn.BatchNorm1d: lambda: (nn.BatchNorm1d(3).eval(), (4, 3)),
    nn.BatchNorm2d: lambda: (nn.BatchNorm2d(3).eval(), (2, 3, 4, 4)),
    nn.BatchNorm3d: lambda: (nn.BatchNorm3d(3).eval(), (1, 3, 2, 2, 2)),
    nn.ReLU: lambda: (nn.ReLU(), (3, 5)),
    nn.ReLU6: lambda: (nn.ReLU6(), (3, 5)),
    nn.Hardtanh: lambda: (nn.Hardtanh(), (3, 5)),
    BaseNeuron: None,  # covered over the neuron registry in test_counter.py
    nn.Identity: lambda: (nn.Identity(), (2, 3)),
    nn.Flatten: lambda: (nn.Flatten(), (2, 3, 4)),
    nn.Unflatten: lambda: (nn.Unflatten(1, (2, 2)), (2, 4)),
    nn.Dropout: lambda: (nn.Dropout().eval(), (2, 3)),
    nn.Dropout1d: lambda: (nn.Dropout1d().eval(), (2, 3, 4)),
    nn.Dropout2d: lambda: (nn.Dropout2d().eval(), (2, 3, 4, 4)),
    nn.Dropout3d: lambda: (nn.Dropout3d().eval(), (1, 2, 3, 4, 4)),
    nn.AlphaDropout: lambda: (nn.AlphaDropout().eval(), (2, 3)),
    # spiking transformers (hand counts in test_transformer_rules.py)
    attention.SpikeQKV: None,  # three operands
    attention.HadamardSum: lambda: (attention.HadamardSum(-1), (2, 3, 4)),
    attention.TokenBatchNorm: lambda: (attention.TokenBatchNorm(3).eval(), (2, 4, 3)),
    norm.ThresholdDependentBatchNorm: lambda: (norm.ThresholdDependentBatchNorm(3).eval(),
                                               (2, 4, 3)),
    norm.TemporalEffectiveBatchNorm: lambda: (norm.TemporalEffectiveBatchNorm(3, 2).eval(),
                                              (2, 4, 3)),
    norm.BatchNormThroughTime: lambda: (norm.BatchNormThroughTime(3, 2).eval(), (2, 4, 3)),
    norm.MPBNLIF: lambda: (norm.MPBNLIF(3).eval(), (2, 4, 3)),
    # per-step and re-parameterisable layers: hand counts in tests/energy/test_rules_layers.py
    norm.PerStepLayer: lambda: (norm.PerStepLayer(nn.Linear(6, 3), torch.randn(2, 3, 6),
                                                  torch.randn(2, 3)), (2, 4, 6)),
    repconv.BatchNormPad: lambda: (repconv.BatchNormPad(3).eval(), (2, 3, 4, 4)),
    nn.LayerNorm: lambda: (nn.LayerNorm(4), (2, 3, 4)),
    nn.Embedding: None,  # takes token indices: hand counts in tests/energy/test_rules_layers.py
    # converted transformer modules: hand counts in tests/energy/test_rules_converted.py
    SignedIFActivation: None,
    Expectation: None,
    ResidualAdd: None,  # two operands
    # sequence blocks: hand counts in tests/energy/test_rules_sequence.py
    LegendreMemory: None,  # keeps its memory between calls
    SpikingTimeMix: lambda: (SpikingTimeMix(4), (3, 2, 4)),
    SpikingChannelMix: lambda: (SpikingChannelMix(4, 8), (3, 2, 4)),
}


CONVERTER_FACTORIES = {
    ChannelAffine: lambda: (ChannelAffine(torch.rand(3) + 0.5, torch.randn(3)), (2, 3, 4, 4)),
    SpikingMaxPool: lambda: (SpikingMaxPool(nn.MaxPool2d(2)), (2, 3, 6, 6)),
}


def test_every_rule_has_a_factory():
    assert set(FACTORIES) == set(RULES)
    assert set(CONVERTER_FACTORIES) == set(converter_rules())


@pytest.mark.parametrize("cls", list(CONVERTER_FACTORIES), ids=lambda c: c.__name__)
def test_converter_rule_counts_a_call(cls):
    module, shape = CONVERTER_FACTORIES[cls]()
    kind = converter_rules()[cls][0]
    assert find_rule(module)[0] == kind
    x = torch.randn(shape)
    x[x.abs() < 0.5] = 0.0
    counts = count_ops(module, x).layer("")
    assert counts.calls == 1 and counts.kind == kind
    zero = count_ops(module, torch.zeros(shape)).layer("")
    if kind == "pool":
        assert 0 < counts.other_adds <= counts.dense_other_adds
        assert zero.other_adds < counts.other_adds
    if kind == "norm":
        assert counts.other_macs == zero.other_macs == x.numel()


@pytest.mark.parametrize("cls", [c for c in RULES if FACTORIES.get(c)], ids=lambda c: c.__name__)
def test_rule_counts_a_call(cls):
    module, shape = FACTORIES[cls]()
    kind, _, _ = find_rule(module)
    assert kind == RULES[cls][0]
    x = torch.randn(shape)
    x[x.abs() < 0.5] = 0.0
    counts = count_ops(module, x).layer("")
    assert counts.calls == 1 and counts.kind == kind
    numbers = counts.to_dict()
    assert all(v >= 0 for v in numbers.values() if isinstance(v, int))
    zero = count_ops(module, torch.zeros(shape)).layer("")
    if kind == "synaptic":
        assert counts.macs > 0 and counts.dense_macs >= counts.macs
        assert zero.synops == 0 and zero.dense_macs == counts.dense_macs
    if kind == "pool":
        assert 0 < counts.other_adds <= counts.dense_other_adds
        assert zero.other_adds == 0
    if kind in ("norm", "activation"):
        assert counts.other_adds + counts.other_macs == zero.other_adds + zero.other_macs > 0


def test_subclass_with_its_own_forward_is_uncounted():
    class Scaled(nn.Linear):
        def forward(self, x):
            return 2 * super().forward(x)

    class Plain(nn.Linear):
        pass

    assert find_rule(Scaled(2, 2))[0] == "uncounted"
    assert find_rule(Plain(2, 2))[0] == "synaptic"


def test_pool_subclass_and_keyword_inputs():
    class MyPool(nn.MaxPool2d):
        pass

    counts = count_ops(MyPool(2), torch.ones(1, 1, 4, 4)).layer("")
    assert counts.kind == "pool" and counts.other_adds == 16

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(input=x)

    assert count_ops(Wrapper(), torch.ones(1, 3)).layer("fc").acs == 6
