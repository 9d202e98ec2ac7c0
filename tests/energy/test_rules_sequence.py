"""Energy rules of the Legendre memory and the RWKV mixes against hand counts; reports of the
spiking LMU and SpikeGPT."""

from __future__ import annotations

import pytest
import torch

from snn.energy import EnergyReport, count_ops
from snn.layers import LegendreMemory, SpikingChannelMix, SpikingLMU, SpikingTimeMix
from snn.layers.sequence import SEQUENCE_BLOCKS
from snn.models import SpikeGPT
from snn.models.spikegpt import LANGUAGE_MODELS


def test_legendre_memory_hand_count():
    mem = LegendreMemory(3, 5.0)
    assert bool((mem.B_bar != 0).all()) and bool((mem.A_bar @ mem.B_bar != 0).all())
    u = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 1.0]]])  # [T=3, B=1, C=2] spikes
    c = count_ops(mem, u).layer("")
    # B u: 4 spikes x d=3 ACs. A m: d MACs per nonzero memory element entering a step:
    # step 0 none (fresh), step 1 channel 0 (3 elements), step 2 both channels (6): 9 x 3.
    assert c.acs == 12 and c.macs == 27
    assert c.dense_macs == 6 * (9 + 3)
    # a second call continues from the carried memory (6 nonzero elements), no input spikes
    c2 = count_ops(mem, torch.zeros(1, 1, 2)).layer("")
    assert c2.acs == 0 and c2.macs == 18


def test_legendre_memory_graded_input_is_macs():
    mem = LegendreMemory(4, 5.0)
    u = torch.tensor([[[0.5, 0.0]]])
    c = count_ops(mem, u).layer("")
    assert c.acs == 0 and c.macs == 4  # B u only: the memory entering the step is zero


def test_rwkv_mixes_hand_count():
    x = torch.randn(3, 2, 4)  # E = 24 elements
    t = count_ops(SpikingTimeMix(4), x)
    own = t.layer("")
    assert own.other_macs == 13 * 24 and own.other_adds == 24
    assert t.layer("key").dense_macs == 6 * 4 * 4  # projections counted as nn.Linear
    c = count_ops(SpikingChannelMix(4, 8), x).layer("")
    # token shift 4 + gate 1 per element; squared ReLU: 1 multiply + 1 comparison per hidden
    assert c.other_macs == 5 * 24 + 48 and c.other_adds == 48


def test_energy_reports_of_the_sequence_models():
    torch.manual_seed(0)
    cell = SpikingLMU(4, 8, order=4, theta=6, neuron_kwargs={"beta": 0.5, "decay_input": True,
                                                            "threshold": 0.2})
    counts = count_ops(cell, torch.rand(10, 2, 4) * 2)
    mem = counts.layer("memory")
    assert mem.kind == "synaptic" and mem.acs > 0  # spikes u drive the memory input
    assert not [x.name for x in counts.layers if x.kind == "uncounted"]
    report = EnergyReport(counts, "loihi", ann_target="cmos45_fp32")
    assert sum(report.totals.values()) > 0 and report.to_text()
    model = SpikeGPT(11, 8, 1)
    counts = count_ops(model, torch.randint(0, 11, (6, 2)))
    kinds = {x.name: x.kind for x in counts.layers}
    assert kinds["blocks.0.att"] == "activation" and kinds["blocks.0.ffn"] == "activation"
    assert kinds["emb"] == "synaptic" and kinds["ln_out"] == kinds["blocks.0.ln1"] == "norm"
    assert not [name for name, kind in kinds.items() if kind == "uncounted"]
    assert EnergyReport(counts, "loihi").to_text()


@pytest.mark.parametrize("name", sorted(SEQUENCE_BLOCKS))
def test_every_sequence_block_is_counted_whole(name):
    torch.manual_seed(0)
    counts = count_ops(SEQUENCE_BLOCKS[name](8), torch.rand(5, 2, 8))
    assert not [x.name for x in counts.layers if x.kind == "uncounted"]
    # left: the residual additions written in the blocks' forward, reported, never zero
    assert all(": add x" in line for line in counts.uncounted)


@pytest.mark.parametrize("name", sorted(LANGUAGE_MODELS))
def test_every_language_model_is_counted_whole(name):
    torch.manual_seed(0)
    counts = count_ops(LANGUAGE_MODELS[name](vocab_size=11, dim=16), torch.randint(0, 11, (5, 2)))
    assert not [x.name for x in counts.layers if x.kind == "uncounted"]
    assert all(": add x" in line for line in counts.uncounted)
    report = EnergyReport(counts, "cmos45_fp32")
    assert not report.unpriced and sum(report.totals.values()) > 0
