"""Patch stems of the spiking transformers: shapes, downsampling and spike-sum outputs."""

from __future__ import annotations

import pytest
import torch

from snn.layers.stems import (
    QKFormerPatchEmbed,
    QKFormerPatchEmbedInit,
    SpikeDrivenPatchSplitting,
    SpikingPatchSplitting,
)

STEMS = {
    "sps_cifar": (lambda: SpikingPatchSplitting(3, 16), (3, 16, 8, 8), True),
    "sps_imagenet": (lambda: SpikingPatchSplitting(3, 16, (1, 1, 1, 1)), (3, 16, 2, 2), True),
    "sdt": (lambda: SpikeDrivenPatchSplitting(3, 16), (3, 16, 2, 2), False),
    "qk_init": (lambda: QKFormerPatchEmbedInit(3, 16), (3, 16, 8, 8), True),
    "qk_stage": (lambda: QKFormerPatchEmbed(3, 16), (3, 16, 16, 16), True),
}


@pytest.mark.parametrize("name", sorted(STEMS))
def test_stem_shapes_and_values(name: str) -> None:
    torch.manual_seed(0)
    make, out_shape, spike_sums = STEMS[name]
    stem = make()
    x = torch.rand(2, 1, 3, 32, 32) * 4
    y = stem(x)
    assert y.shape == (2, 1, *out_shape[1:])
    if spike_sums:  # spikes plus shortcut spikes
        assert set(y.unique().tolist()) <= {0.0, 1.0, 2.0} and y.sum() > 0
    y.sum().backward()


@pytest.mark.parametrize("name", sorted(STEMS))
def test_stem_rejects_wrong_channels(name: str) -> None:
    with pytest.raises(ValueError, match=r"\[T, B, 3, H, W\]"):
        STEMS[name][0]()(torch.rand(2, 1, 2, 32, 32))
