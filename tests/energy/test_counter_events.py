"""Events of a fixed amplitude (converted networks, average-pooled spikes) are accumulates; the
steps of a model that simulates in chunks are the steps it ran."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snn
from snn.converters import convert
from snn.energy import OpCounter, count_ops
from snn.energy.targets import PJ


def _two_neuron_network(time_chunk: int, steps: int = 5):
    """Linear(2, 2) with identity weights, ReLU, Linear(2, 1) with weights [1, 1], converted with
    the max method on calibration inputs whose largest activation is 2: threshold 2, initial
    membrane 1 (half the threshold)."""
    ann = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        ann[0].weight.copy_(torch.eye(2))
        ann[2].weight.fill_(1.0)
    s, _ = convert(ann.eval(), torch.tensor([[2.0, 2.0], [0.5, 1.0]]), method="max",
                   steps=steps, time_chunk=time_chunk)
    return s


@pytest.mark.parametrize("time_chunk", [1, 2, 3, 5, 8])
def test_converted_network_hand_counts(time_chunk):
    s = _two_neuron_network(time_chunk)
    (neuron,) = s.neurons().values()
    assert float(neuron.threshold) == 2.0
    # in units of the threshold the inputs 1.2 and 0.7 are 0.6 and 0.35 per step from v0 = 0.5:
    # neuron 1: 1.1 (spike) 0.7 1.3 (spike) 0.9 1.5 (spike) -> 3 spikes in 5 steps
    # neuron 2: 0.85 1.2 (spike) 0.55 0.9 1.25 (spike)      -> 2 spikes
    x = torch.tensor([[1.2, 0.7]])
    with OpCounter(s) as counter:
        s(x)
    counts = counter.counts()
    assert counts.steps == 5 and counts.samples == 1  # the steps run, whatever the chunk
    first, second = counts.layer("graph.0"), counts.layer("graph.2")
    # analog input current: 2 nonzero inputs x fan-out 1 x 5 steps, multiply-accumulates
    assert (first.macs, first.acs) == (10, 0)
    # spikes of amplitude 2 (the threshold): 5 spikes x fan-out 1, accumulates
    assert (second.acs, second.macs) == (5, 0)
    assert second.input_nonzero == 5 and second.input_reads == 5
    assert counts.layer("graph.1.neuron").spikes == 5
    assert counts.layer("graph.1.neuron").neuron_updates == 2 * 5
    assert counts.layer("readout").neuron_updates == 5
    assert counts.uncounted == []
    report = counter.report("cmos45_fp32")
    layer = next(x for x in report.layers if x.name == "graph.2")
    assert layer.compute == pytest.approx(5 * 0.9 * PJ)  # ACs at 0.9 pJ, not MACs at 4.6 pJ
    assert report.complete


def test_converted_counts_do_not_depend_on_time_chunk():
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).eval()
    x = torch.rand(5, 16)
    reference = None
    for chunk in (1, 3, 8, 16):
        s, _ = convert(ann, torch.rand(64, 16, generator=torch.Generator().manual_seed(1)),
                       steps=16, time_chunk=chunk)
        counts = count_ops(s, x)
        got = (counts.steps, counts.samples, counts.total("acs"), counts.total("macs"),
               counts.total("neuron_updates"), counts.total("spikes"))
        assert counts.steps == 16 and counts.uncounted == []
        assert counts.layer("graph.2").macs == 0 and counts.layer("graph.2").acs > 0
        if reference is None:
            reference = got
        assert got == reference


def test_counting_under_inference_mode():
    s = _two_neuron_network(time_chunk=2)
    with torch.inference_mode():
        counts = count_ops(s, torch.tensor([[1.2, 0.7]]))
    assert counts.steps == 5 and counts.layer("graph.2").acs == 5
    assert counts.layer("graph.2").macs == 0


def test_converted_cnn_every_layer_counted_and_events_are_accumulates():
    torch.manual_seed(0)
    ann = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16, 10),
    ).eval()
    calib = torch.rand(32, 1, 8, 8)
    s, _ = convert(ann, calib, steps=6, time_chunk=4, channelwise=True)
    counts = count_ops(s, calib[:3])
    assert counts.steps == 6 and counts.samples == 3
    assert counts.uncounted == []
    kinds = {x.name: x.kind for x in counts.layers}
    assert "uncounted" not in kinds.values()
    assert kinds["graph.3"] == "pool"  # the spiking max pool
    synaptic = [x for x in counts.layers if x.kind == "synaptic"]
    assert synaptic[0].macs > 0 and synaptic[0].acs == 0  # analog image
    for layer in synaptic[1:]:
        assert layer.macs == 0 and layer.acs > 0, layer.name


def test_channel_affine_is_a_norm():
    # a BatchNorm with no Conv/Linear before it becomes a ChannelAffine
    ann = nn.Sequential(nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2)).eval()
    with torch.no_grad():
        ann[0].running_mean.fill_(0.1)
        ann[0].running_var.fill_(2.0)
    s, _ = convert(ann, torch.rand(16, 3), steps=4)
    counts = count_ops(s, torch.rand(2, 3))
    affine = next(x for x in counts.layers if x.type == "ChannelAffine")
    assert affine.kind == "norm" and affine.other_macs == 4 * 2 * 3
    assert counts.uncounted == []


class _Scaled(nn.Module):
    """Spikes times a per-feature amplitude, declared as fixed-amplitude events."""

    fixed_amplitude_events = True

    def __init__(self, amplitude):
        super().__init__()
        self.register_buffer("amplitude", amplitude)

    def forward(self, x):
        return (x > 0.5).float() * self.amplitude


class _Graded(_Scaled):
    fixed_amplitude_events = False


def test_fixed_amplitude_attribute_makes_accumulates():
    torch.manual_seed(0)
    amplitude = torch.tensor([0.3, 1.7, 2.5, 0.9])
    x = torch.rand(6, 4)
    spikes = int((x > 0.5).sum())
    for cls, acs in ((_Scaled, True), (_Graded, False)):
        model = nn.Sequential(cls(amplitude), nn.Flatten(), nn.Linear(4, 3))
        fc = count_ops(model, x).layer("2")
        assert fc.synops == spikes * 3
        assert (fc.acs > 0, fc.macs > 0) == (acs, not acs)


def test_avg_pooled_spikes_are_accumulates_per_event():
    model = nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4, 3))
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = x[0, 0, 0, 1] = x[0, 0, 3, 3] = 1.0  # 2 events in one window, 1 in another
    counts = count_ops(model, x)
    fc = counts.layer("2")
    # the 1/4 of the average folds into the weights: each of the 3 events costs fan-out 3
    assert (fc.acs, fc.macs) == (3 * 3, 0)
    assert fc.input_reads == 3


def test_global_average_pool_of_spikes_and_unequal_windows():
    x = (torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 5))
    fc = count_ops(model, x).layer("2")
    assert (fc.acs, fc.macs) == (int(x.sum()) * 5, 0)
    # 5 inputs into 3 adaptive windows have unequal sizes: the pooled values stay graded
    y = (torch.rand(2, 1, 5) < 0.6).float()
    y[:, :, 1] = 1.0
    model = nn.Sequential(nn.AdaptiveAvgPool1d(3), nn.Flatten(), nn.Linear(3, 2))
    fc = count_ops(model, y).layer("2")
    assert fc.acs == 0 and fc.macs > 0


def test_trained_snn_with_average_pooling_in_time_distributed():
    torch.manual_seed(0)
    model = nn.Sequential(
        snn.TimeDistributed(nn.Conv2d(1, 4, 3, padding=1)), snn.IF(threshold=0.3),
        snn.TimeDistributed(nn.AvgPool2d(2), nn.Conv2d(4, 4, 3, padding=1)), snn.IF(),
    )
    x = torch.rand(3, 2, 1, 6, 6)
    with snn.Monitor(model, layers=["1"]) as mon:
        model(x)
    snn.reset(model)
    spikes = mon.spikes("1")
    counts = count_ops(model, x)
    conv = counts.layer("2.1")
    assert conv.macs == 0 and conv.input_reads == int(spikes.sum()) > 0


def test_in_place_change_after_marking_makes_values_graded():
    class Bump(nn.Module):
        def forward(self, x):
            return x.add_(0.25)

    model = nn.Sequential(_Scaled(torch.full((4,), 2.0)), Bump(), nn.Linear(4, 3))
    x = torch.rand(3, 4)
    fc = count_ops(model, x).layer("2")
    assert fc.acs == 0 and fc.macs == 3 * 4 * 3
