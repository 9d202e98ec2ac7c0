"""Energy rules of the per-step layers (folded TEBN/BNTT), of RepConv's padded batch norm, and
of ``nn.LayerNorm`` and ``nn.Embedding``, against hand counts."""

from __future__ import annotations

import torch
from torch import nn

from snn.energy import EnergyReport, count_ops
from snn.layers.norm import PerStepLayer, TemporalEffectiveBatchNorm, fold_norm
from snn.layers.repconv import BatchNormPad
from snn.layers.time import TimeDistributed

# step 0: nonzero weights per input feature (1, 0, 2); step 1: (2, 1, 0)
W = torch.tensor([[[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]],
                  [[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]])
B = torch.zeros(2, 2)
X = torch.tensor([[[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]],
                  [[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]])  # [T=2, B=2, 3]


def _linear_per_step() -> PerStepLayer:
    return PerStepLayer(nn.Linear(3, 2), W.clone(), B.clone())


def test_per_step_linear_hand_count() -> None:
    # step 0: sample 0 reaches 1 + 0 + 2 = 3 synapses, sample 1 one: 4 ACs;
    # step 1: sample 0 reaches 1 + 0, sample 1 2 + 1: 4 ACs. Dense: 2 steps x 2 x 3 x 2 = 24.
    c = count_ops(_linear_per_step(), X).layer("")
    assert c.kind == "synaptic" and "per step" in c.reason
    assert c.acs == 8 and c.macs == 0
    assert c.dense_macs == 24 and c.input_nonzero == 8


def test_per_step_linear_counts_every_synapse_or_graded_values() -> None:
    # every structural synapse: 8 input spikes x fan-out 2
    assert count_ops(_linear_per_step(), X, nonzero_weights_only=False).layer("").acs == 16
    graded = count_ops(_linear_per_step(), X * 0.5).layer("")
    assert graded.acs == 0 and graded.macs == 8


def test_folded_tebn_conv_costs_its_steps_as_separate_layers() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        conv.weight[0, 0] = 0.0  # a pruned kernel: fewer synapses at step t
    norm = TemporalEffectiveBatchNorm(3, steps=3).eval()
    with torch.no_grad():
        norm.p.copy_(torch.tensor([0.5, 0.0, 2.0]))  # step 1: all weights zero
    folded = fold_norm(conv, norm)
    assert isinstance(folded, PerStepLayer)
    x = (torch.rand(3, 2, 2, 5, 5) < 0.4).float()
    c = count_ops(folded, x).layer("")
    expected_acs = expected_dense = 0
    for t in range(3):
        step = nn.Conv2d(2, 3, 3, padding=1)
        with torch.no_grad():
            step.weight.copy_(folded.weight[t])
        one = count_ops(TimeDistributed(step), x[t:t + 1]).layer("0")
        expected_acs += one.acs
        expected_dense += one.dense_macs
    assert c.acs == expected_acs and c.dense_macs == expected_dense
    # the zero step contributes nothing: fewer ACs than the three steps of the shared weights
    shared = count_ops(TimeDistributed(conv), x).layer("0")
    assert 0 < c.acs < shared.acs


def test_batch_norm_pad_is_one_multiply_add_per_input_element() -> None:
    c = count_ops(BatchNormPad(3, pad=1).eval(), torch.randn(2, 3, 4, 4)).layer("")
    assert c.kind == "norm" and c.other_macs == 2 * 3 * 16 and "border" in c.reason


def test_layer_norm_hand_count() -> None:
    # [3, 2, 4] over the last 4: E = 24 elements in G = 6 groups.
    # adds: mean sum 24 + centring 24 + eps 6 = 54;
    # multiply-adds: variance 24 + normalise 24 + affine 24 + two 1/n scalings per group 12 = 84
    c = count_ops(nn.LayerNorm(4), torch.randn(3, 2, 4)).layer("")
    assert c.kind == "norm"
    assert (c.other_adds, c.other_macs) == (54, 84)
    assert (c.dense_other_adds, c.dense_other_macs) == (54, 84)  # zeros cost the same
    assert (c.input_reads, c.weight_reads, c.output_writes) == (48, 48, 24)
    assert "6 square roots" in c.reason and "not priced" in c.reason


def test_layer_norm_without_affine_and_over_two_dimensions() -> None:
    # [2, 3, 4] over (3, 4): E = 24, G = 2; no affine map: 2E + 2G multiply-adds
    ln = nn.LayerNorm((3, 4), elementwise_affine=False)
    c = count_ops(ln, torch.randn(2, 3, 4)).layer("")
    assert (c.other_adds, c.other_macs, c.weight_reads) == (50, 52, 0)
    # weight without bias: gamma read once per element
    c = count_ops(nn.LayerNorm(4, bias=False), torch.randn(2, 4)).layer("")
    assert (c.other_macs, c.weight_reads) == (3 * 8 + 4, 8)


def test_layer_norm_in_the_equivalent_ann_costs_its_additions_too() -> None:
    counts = count_ops(nn.LayerNorm(4), torch.randn(3, 2, 4))
    report = EnergyReport(counts, "cmos45_fp32")
    t = report.target
    snn = 54 * t.ac.joules + 84 * t.mac.joules
    assert abs(report.totals["compute"] - snn) < 1e-9 * snn
    ann = report.ann_totals["compute"]  # run once per sample: the counts over the steps
    assert abs(ann - snn / counts.steps) < 1e-9 * snn


def test_embedding_is_one_event_per_token() -> None:
    # 6 tokens, width 5: each token drives its row's 5 synapses
    emb = nn.Embedding(10, 5)
    tokens = torch.tensor([[0, 3], [9, 3], [1, 0]])
    c = count_ops(emb, tokens).layer("")
    assert c.kind == "synaptic" and "one input event per token" in c.reason
    assert (c.acs, c.macs, c.dense_macs) == (30, 0, 0)
    assert c.dense_synops == 6 * 10 * 5  # every one-hot element times its fan-out
    assert (c.weight_reads, c.input_reads, c.state_reads, c.state_writes) == (30, 6, 30, 30)


def test_embedding_with_max_norm_is_uncounted_not_zero() -> None:
    counts = count_ops(nn.Embedding(10, 5, max_norm=1.0), torch.tensor([[1, 2]]))
    c = counts.layer("")
    assert c.kind == "uncounted" and "max_norm" in c.reason and c.acs == 0
    assert counts.uncounted
