"""Energy reports: hand-computed energies on each target, the ANN comparison, output forms."""

from __future__ import annotations

import json

import matplotlib
import pytest
import torch
from torch import nn

import snn
from snn.energy import EnergyReport, OpCounter, count_ops, format_energy, neurobench_metrics
from snn.viz import si_scale

matplotlib.use("Agg")

PJ = 1e-12


def tiny_model() -> nn.Sequential:
    fc = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        fc.weight.fill_(0.6)
    return nn.Sequential(snn.TimeDistributed(fc), snn.IF(threshold=0.5))


def tiny_counts():
    # T=2, B=1: one input spike at t=0; both IF neurons reach 0.6 >= 0.5 and fire once
    x = torch.zeros(2, 1, 4)
    x[0, 0, 0] = 1.0
    return count_ops(tiny_model(), x)


def test_tiny_counts_by_hand():
    c = tiny_counts()
    fc, neuron = c.layer("0.0"), c.layer("1")
    assert (fc.acs, fc.dense_macs, fc.memory_accesses) == (2, 16, 1 + 2 + 2 + 2)
    assert (neuron.neuron_updates, neuron.active_updates, neuron.spikes) == (4, 2, 2)
    assert neuron.memory_accesses == 4 + 4 + 2
    assert (c.steps, c.samples) == (2, 1)


def test_cmos45_fp32_energy_by_hand():
    r = EnergyReport(tiny_counts(), "cmos45_fp32")
    t = r.totals
    assert t["compute"] == pytest.approx(2 * 0.9 * PJ)
    assert t["memory"] == pytest.approx((7 + 10) * 10 * PJ)
    assert t["neuron"] == pytest.approx(4 * 4.6 * PJ)
    assert t["communication"] == 0  # included: spikes travel through memory
    assert t["total"] == pytest.approx(190.2 * PJ)
    # equivalent ANN: 8 MACs, 18 + 4 memory accesses, 2 ReLU comparisons per sample
    a = r.ann_totals
    assert a["compute"] == pytest.approx((8 * 4.6 + 2 * 0.9) * PJ)
    assert a["memory"] == pytest.approx((18 + 4) * 10 * PJ)
    assert a["total"] == pytest.approx(258.6 * PJ)
    assert r.ratio == pytest.approx(258.6 / 190.2)
    assert r.complete


def test_loihi_energy_by_hand():
    r = EnergyReport(tiny_counts(), "loihi", ann_target="cmos45_fp32", mean_hops=2)
    t = r.totals
    assert t["compute"] == pytest.approx(2 * 23.6 * PJ)
    assert t["memory"] == 0  # included in the synaptic op and neuron update figures
    assert t["neuron"] == pytest.approx((2 * 81 + 2 * 52) * PJ)  # active / inactive
    assert t["communication"] == pytest.approx((2 * 1.7 + 2 * 2 * 3.0) * PJ)
    assert r.ann_totals["total"] == pytest.approx(258.6 * PJ)
    assert r.complete


def test_truenorth_prices_synaptic_events_only():
    r = EnergyReport(tiny_counts(), "truenorth", ann_target="cmos45_fp32")
    assert r.totals["total"] == pytest.approx(2 * 26 * PJ)
    assert r.complete


def test_spinnaker2_energy_by_hand():
    r = EnergyReport(tiny_counts(), "spinnaker2", ann_target="cmos45_fp32")
    assert r.totals["compute"] == pytest.approx(2 * 10 * PJ)  # 2 synaptic ops at 10 pJ
    assert r.totals["total"] == pytest.approx(20 * PJ)
    # memory, neuron updates and spikes have no SpiNNaker 2 figure: listed, not priced at 0
    unpriced = {(u["layer"], u["what"]): u["count"] for u in r.unpriced if u["model"] == "snn"}
    assert unpriced == {
        ("0.0", "memory accesses"): 7,
        ("1", "memory accesses"): 10,
        ("1", "neuron updates"): 4,
        ("1", "spikes"): 2,
    }
    assert not r.complete and r.ann_totals["total"] == pytest.approx(258.6 * PJ)


def test_unpriced_work_is_listed_not_zero():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2).eval())
    counts = count_ops(model, torch.tensor([[0.5, 0.0, 2.0]]))
    r = EnergyReport(counts, "loihi")  # no MAC figure, and the ANN on Loihi too
    assert not r.complete
    whats = {(u["model"], u["layer"], u["what"]) for u in r.unpriced}
    assert ("snn", "0", "MACs") in whats
    assert ("snn", "1", "elementwise multiply-adds (as MACs)") in whats
    assert ("ann", "0", "MACs") in whats
    assert "INCOMPLETE" in r.to_text() and "4 MACs" in r.to_text()


def test_uncounted_layers_make_the_report_incomplete():
    counts = count_ops(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), torch.ones(1, 2))
    r = EnergyReport(counts, "cmos45_fp32")
    assert not r.complete and r.uncounted == ["1 (Tanh): no counting rule for Tanh"]
    assert "uncounted 1 (Tanh)" in r.to_text()


def test_json_dict_text_and_figure(tmp_path):
    counter = OpCounter(tiny_model())
    x = torch.zeros(2, 1, 4)
    x[0, 0, 0] = 1.0
    with counter:
        counter.model(x)
    r = counter.report("loihi", ann_target="cmos45_fp32")
    d = json.loads(r.to_json(tmp_path / "report.json"))
    assert json.loads((tmp_path / "report.json").read_text()) == d
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left
    assert d["totals"]["total"] == pytest.approx(r.totals["total"])
    assert d["target"]["figures"]["ac"]["pj"] == pytest.approx(23.6)
    assert d["metrics"]["effective_acs"] == 2
    assert [layer["name"] for layer in d["layers"]] == ["0.0", "1"]
    text = str(r)
    assert "loihi" in text and "Davies" in text and "ANN / SNN energy" in text
    fig = r.plot()
    assert len(fig.axes) == 2
    assert len(fig.axes[0].patches) == 2 * 4 and len(fig.axes[1].patches) == 2 * 4
    heights = sum(p.get_height() for p in fig.axes[0].patches)
    factor, unit = si_scale(max(e.total for e in r.layers))  # bars in J with an SI prefix
    assert f"({unit}," in fig.axes[0].get_ylabel()
    assert heights * factor == pytest.approx(r.totals["total"])


def test_ann_equivalent_divides_by_time_steps():
    model = nn.Sequential(snn.TimeDistributed(nn.Linear(3, 2)), snn.LIF())
    counts = count_ops(model, torch.ones(5, 4, 3))
    assert counts.steps == 5 and counts.samples == 4
    r = EnergyReport(counts, "cmos45_fp32")
    ann_fc = r.ann_layers[0]
    assert ann_fc.compute == pytest.approx(4 * 3 * 2 * 4.6 * PJ)  # one dense pass per sample
    assert r.per_sample["ann"] == pytest.approx(r.ann_totals["total"] / 4)


def test_report_arguments_are_checked():
    counts = tiny_counts()
    with pytest.raises(ValueError, match="unknown hardware target"):
        EnergyReport(counts, "loihi9")
    with pytest.raises(ValueError, match="mean_hops"):
        EnergyReport(counts, "loihi", mean_hops=-1)
    with pytest.raises(TypeError):
        EnergyReport({"acs": 1}, "loihi")


def test_metrics_names_and_values():
    m = neurobench_metrics(tiny_counts())
    assert m["synaptic_operations"] == {"Effective_MACs": 0, "Effective_ACs": 2, "Dense": 16}
    assert m["activation_sparsity"] == pytest.approx(1 - 2 / 4)
    assert m["footprint"] == 2 * 4 * 4  # eight float32 weights


def test_format_energy():
    assert format_energy(8.37e-3) == "8.37 mJ"
    assert format_energy(1.8e-12) == "1.8 pJ"
    assert format_energy(0) == "0 J" and format_energy(None) == "-"


def test_steps_and_samples_overrides():
    model = tiny_model()
    counter = OpCounter(model)
    x = torch.zeros(2, 1, 4)
    x[0, 0, 0] = 1.0
    with counter:
        model(x)
    assert counter.counts(steps=1, samples=2).steps == 1
    r = counter.report("cmos45_fp32", steps=1, samples=2)
    assert r.ann_layers[0].compute == pytest.approx(16 * 4.6 * PJ)  # no division by T
    assert r.per_sample["snn"] == pytest.approx(r.totals["total"] / 2)
    with pytest.raises(ValueError, match="steps"):
        counter.counts(steps=0)
    with pytest.raises(ValueError, match="samples"):
        counter.counts(samples=-1)
