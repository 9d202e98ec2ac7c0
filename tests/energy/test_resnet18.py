"""ResNet-18 at 224x224: the published 1.81-1.82 GMAC and 8.37 mJ figures from real counts."""

from __future__ import annotations

import pytest
import torch

from snn.energy import EnergyReport, count_ops
from snn.models import resnet18

PJ = 1e-12

# MACs of each stage, written out by hand: output elements x (input channels x kernel taps)
CONV1 = 64 * 112 * 112 * (3 * 7 * 7)                                  # 118,013,952
LAYER1 = 4 * (64 * 56 * 56) * (64 * 9)                                # 462,422,016


def stage(width: int, size: int) -> int:
    """First conv (stride 2, half the input channels), three full convs, 1x1 shortcut."""
    out = width * size * size
    return out * (width // 2 * 9) + 3 * out * (width * 9) + out * (width // 2)


FC = 512 * 1000
HAND_MACS = CONV1 + LAYER1 + stage(128, 28) + stage(256, 14) + stage(512, 7) + FC


@pytest.fixture(scope="module")
def counts():
    torch.manual_seed(0)
    model = resnet18().eval()
    return count_ops(model, torch.rand(1, 3, 224, 224))


@pytest.mark.slow
def test_resnet18_dense_macs(counts):
    assert HAND_MACS == 1_814_073_344
    assert counts.total("dense_macs") == HAND_MACS
    # torchvision documents 1.81 GFLOPS (multiply-adds) for resnet18
    assert round(counts.total("dense_macs") / 1e9, 2) == 1.81
    # the input has no zeros, so every real input pixel costs its fan-out; padding taps cost
    # nothing: along each axis the 112 windows 7 wide, stride 2, padding 3, cover 4, 6,
    # 109 x 7 and 5 of the 224 pixels
    effective = 64 * 3 * (4 + 6 + 109 * 7 + 5) ** 2
    conv1 = counts.layer("conv1")
    assert conv1.macs == conv1.dense_synops == effective
    assert conv1.acs == 0
    # after ReLU about half the activations are zero: later layers skip them
    assert counts.total("macs") < 0.7 * HAND_MACS


@pytest.mark.slow
def test_resnet18_published_energy(counts):
    # layer-wise MAC counters (ptflops, syops-counter) add batch-norm, ReLU and pooling element
    # operations to the convolution and linear MACs: 1.82 GMac
    bn = 64 * 112 * 112 + 4 * 64 * 56 * 56 + 5 * 128 * 28 * 28 + 5 * 256 * 14 * 14 + 5 * 512 * 7 * 7
    relu = 64 * 112 * 112 + 4 * 64 * 56 * 56 + 4 * 128 * 28 * 28 + 4 * 256 * 14 * 14 \
        + 4 * 512 * 7 * 7
    maxpool = 64 * (2 + 55 * 3) ** 2  # 3x3/2 windows over 112 rows: the first is clipped to 2
    avgpool = 512 * 7 * 7
    assert counts.total("other_macs") == bn
    assert counts.total("dense_other_adds") == relu + maxpool + avgpool
    all_ops = HAND_MACS + bn + relu + maxpool + avgpool
    assert round(all_ops / 1e9, 2) == 1.82
    # 1.82 GMAC x 4.6 pJ = 8.37 mJ; the exact total is within 0.1 % of it
    assert all_ops * 4.6 * PJ == pytest.approx(8.37e-3, rel=1e-3)
    report = EnergyReport(counts, "cmos45_fp32")
    fc_and_convs = sum(
        e.compute for x, e in zip(counts.layers, report.ann_layers) if x.kind == "synaptic"
    )
    assert fc_and_convs == pytest.approx(HAND_MACS * 4.6 * PJ)  # 8.345 mJ
    assert report.ann_totals["compute"] == pytest.approx(
        (HAND_MACS + bn) * 4.6 * PJ + (relu + maxpool + avgpool) * 0.9 * PJ
    )


@pytest.mark.slow
def test_resnet18_residual_additions_are_reported(counts):
    assert sorted(counts.functional) == [f"layer{s}.{b}: add" for s in range(1, 5) for b in (0, 1)]
    assert len(counts.uncounted) == 8
