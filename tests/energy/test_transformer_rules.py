"""Energy rules of the spiking transformers: spike-spike products, masks and column sums,
multi-level spikes and folded normalisation, against hand counts; reports of the zoo's
transformers."""

from __future__ import annotations

import pytest
import torch

from snn.energy import EnergyReport, count_ops
from snn.layers.attention import HadamardSum, SpikeMask, SpikeQKV
from snn.layers.norm import MPBNLIF, ThresholdDependentBatchNorm
from snn.models import ZOO, create_model

K = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
V = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
Q = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


class _QKV(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.core = SpikeQKV(0.125)

    def forward(self, q, k, v):
        return self.core(q, k, v)


def test_qkv_long_sequence_hand_count() -> None:
    # N = 3 > d = 2: Q (K^T V). K^T V: |k_n| |v_n| = 1*2 + 2*1 + 0*1 = 4 ACs, giving
    # [[1, 2], [0, 1]] (nonzeros per row: 2, 1); Q (K^T V): column sums of Q are (2, 2), so
    # 2*2 + 2*1 = 6 ACs. Dense: 2 N d^2 = 24 products.
    c = count_ops(_QKV(), Q, K, V).layer("core")
    assert c.acs == 10 and c.macs == 0
    assert c.dense_macs == 24
    assert c.kind == "synaptic"


def test_qkv_short_sequence_hand_count() -> None:
    # N = 2 <= d = 3: (Q K^T) V. Q K^T costs sum_i (sum_n q_ni)(sum_m k_mi) ACs.
    q = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    v = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    # column sums q: (1, 2, 0), k: (1, 1, 1) -> 3 ACs; Q K^T = [[1, 1], [0, 1]]: nonzeros per
    # column (1, 2), row sums of V (3, 1) -> 1*3 + 2*1 = 5 ACs
    c = count_ops(_QKV(), q, k, v).layer("core")
    assert c.acs == 8 and c.dense_macs == 2 * 2 * 2 * 3


def test_multilevel_spikes_cost_their_value() -> None:
    # the I-LIF convention: an integer spike s is s binary spikes, so doubling Q doubles the
    # ACs of the second product (6 -> 12) and leaves K^T V (4) unchanged
    c = count_ops(_QKV(), 2 * Q, K, V).layer("core")
    assert c.acs == 4 + 12


def test_graded_operands_are_macs() -> None:
    c = count_ops(_QKV(), Q * 0.3, K, V).layer("core")
    assert c.acs == 0 and c.macs == c.dense_macs == 24


def test_column_sum_and_mask_hand_counts() -> None:
    class SDSACore(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.sum = HadamardSum(-2)
            self.mask = SpikeMask()

        def forward(self, q, k, v):
            return self.mask((self.sum(k, v) >= 1).float(), q)

    # K (x) V = [[1, 0], [0, 1], [0, 0]]: two surviving spikes, two ACs; the mask is free
    counts = count_ops(SDSACore(), Q, K, V)
    assert counts.layer("sum").acs == 2 and counts.layer("sum").dense_macs == 6
    mask = counts.layer("mask")
    assert mask.kind == "free" and mask.acs == mask.macs == 0 and "AND" in mask.reason


def test_mpbn_folded_costs_no_norm() -> None:
    neuron = MPBNLIF(3).eval()
    x = torch.rand(4, 2, 3) * 2
    unfolded = count_ops(neuron, x).layer("")
    neuron.reparameterize()
    folded = count_ops(neuron, x).layer("")
    assert unfolded.other_macs == x.numel() and folded.other_macs == 0
    assert unfolded.neuron_updates == folded.neuron_updates == x.numel()
    assert folded.kind == "neuron" and "threshold" in folded.reason


def test_snn_norm_is_one_multiply_add_per_element_and_foldable() -> None:
    c = count_ops(ThresholdDependentBatchNorm(3).eval(), torch.randn(2, 4, 3)).layer("")
    assert c.other_macs == 24 and "fold" in c.reason


@pytest.mark.parametrize("name", ["spikformer_cifar10", "sdt_imagenet", "qkformer_imagenet",
                                  "sdt_cifar10", "meta_spikeformer_imagenet"])
def test_energy_report_of_a_transformer(name: str) -> None:
    entry = ZOO[name]
    torch.manual_seed(0)
    model = create_model(name, **entry.small)
    x = (torch.rand(2, 1, *(entry.small_input_shape or entry.input_shape)) < 0.5).float()
    counts = count_ops(model, x)  # batch statistics: an untrained model still fires
    uncounted = [layer.name for layer in counts.layers if layer.kind == "uncounted"]
    assert not uncounted
    attention = [layer for layer in counts.layers
                 if layer.type in ("SpikeQKV", "HadamardSum")]
    assert attention and all(layer.calls == 1 for layer in attention)
    report = EnergyReport(counts, "loihi", ann_target="cmos45_fp32")
    assert sum(report.totals.values()) > 0
    priced = {x.name: x.total for x in report.layers}
    for layer in attention:  # its operations are priced
        assert (priced[layer.name] > 0) == (layer.acs + layer.macs > 0)
    assert report.to_text()
