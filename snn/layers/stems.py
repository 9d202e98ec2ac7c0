"""Patch stems of the spiking transformers: images ``[T, B, C, H, W]`` to feature maps
``[T, B, D, H / p, W / p]`` whose positions are the tokens.

- :class:`SpikingPatchSplitting` (SPS): Zhou et al., Spikformer, ICLR 2023;
- :class:`SpikeDrivenPatchSplitting`: Yao et al., Spike-driven Transformer, NeurIPS 2023
  (membrane-shortcut version of SPS: the output is a membrane, not spikes);
- :class:`QKFormerPatchEmbedInit` / :class:`QKFormerPatchEmbed`: Zhou et al., QKFormer,
  NeurIPS 2024 (the stems of its hierarchical stages, with a downsampling shortcut).

Neurons follow :func:`snn.layers.attention.make_neuron` (``neuron`` factory, default
:class:`snn.LIF` with the papers' options).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from snn.layers.attention import NeuronFactory, make_neuron
from snn.layers.lean import run_sequential
from snn.layers.time import TimeDistributed
from snn.neurons.lif import LIF

__all__ = [
    "QKFormerPatchEmbed",
    "QKFormerPatchEmbedInit",
    "SpikeDrivenPatchSplitting",
    "SpikingPatchSplitting",
]


def _conv_bn(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> TimeDistributed:
    return TimeDistributed(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out)
    )


def _pool() -> TimeDistributed:
    return TimeDistributed(nn.MaxPool2d(3, stride=2, padding=1))


def _check_pools(pools: Sequence[bool]) -> tuple[bool, ...]:
    if len(pools) != 4:
        raise ValueError(f"pools must give 4 flags (one per stem convolution), got {pools}")
    return tuple(bool(p) for p in pools)


def _check_image(name: str, x: Tensor, channels: int) -> None:
    if x.dim() != 5 or x.shape[2] != channels:
        raise ValueError(f"{name}: expected [T, B, {channels}, H, W], got {tuple(x.shape)}")


class SpikingPatchSplitting(nn.Module):
    """Spikformer's spiking patch splitting (SPS) with its relative position embedding.

    Four 3x3 conv-BN-neuron stages widen to ``D/8, D/4, D/2, D`` channels; a 3x3 max pool
    (stride 2) follows the neuron of the stages flagged in ``pools`` (the last two for
    CIFAR's 4x4 patches, all four for ImageNet's 16x16); then ``x + SN(BN(conv(x)))``, the
    relative position embedding. Convolutions have no bias, as in the authors' code.

    Args:
        in_channels: image channels; embed_dim: ``D`` (a multiple of 8).
        pools: four flags, one max pool after each stage when set.
        neuron, neuron_kwargs: neuron factory and options.

    Input ``[T, B, C, H, W]``; output ``[T, B, D, H', W']`` (sums of two spike maps, values in
    {0, 1, 2}).
    """

    def __init__(self, in_channels: int, embed_dim: int,
                 pools: Sequence[bool] = (False, False, True, True),
                 neuron: NeuronFactory = LIF, neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        if embed_dim % 8:
            raise ValueError(f"embed_dim must be a multiple of 8, got {embed_dim}")
        self.in_channels = int(in_channels)
        widths = (embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim)
        layers: list[nn.Module] = []
        c_in = in_channels
        for width, pool in zip(widths, _check_pools(pools), strict=True):
            layers += [_conv_bn(c_in, width), make_neuron(neuron, neuron_kwargs)]
            if pool:
                layers.append(_pool())
            c_in = width
        self.stages = nn.Sequential(*layers)
        self.rpe = nn.Sequential(_conv_bn(embed_dim, embed_dim),
                                 make_neuron(neuron, neuron_kwargs))

    def forward(self, x: Tensor) -> Tensor:
        _check_image("SpikingPatchSplitting", x, self.in_channels)
        # snn.layers.lean.run_sequential: the same values, with less kept for backward
        x = run_sequential(self.stages, x)
        return x + run_sequential(self.rpe, x)


class SpikeDrivenPatchSplitting(nn.Module):
    """The Spike-driven Transformer's patch splitting (membrane-shortcut SPS).

    Three conv-BN-neuron stages (``D/8, D/4, D/2``; max pool after the neuron where
    flagged), a fourth conv-BN to ``D`` (max pool where flagged) whose output ``u`` is a
    membrane, and the position embedding ``u + BN(conv(SN(u)))``. Convolutions have no bias,
    as in the authors' code.

    Args:
        in_channels, embed_dim, pools, neuron, neuron_kwargs: as in
            :class:`SpikingPatchSplitting`.

    Input ``[T, B, C, H, W]``; output a membrane ``[T, B, D, H', W']``.
    """

    def __init__(self, in_channels: int, embed_dim: int,
                 pools: Sequence[bool] = (True, True, True, True),
                 neuron: NeuronFactory = LIF, neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        if embed_dim % 8:
            raise ValueError(f"embed_dim must be a multiple of 8, got {embed_dim}")
        self.in_channels = int(in_channels)
        pools = _check_pools(pools)
        widths = (embed_dim // 8, embed_dim // 4, embed_dim // 2)
        layers: list[nn.Module] = []
        c_in = in_channels
        for width, pool in zip(widths, pools[:3], strict=True):
            layers += [_conv_bn(c_in, width), make_neuron(neuron, neuron_kwargs)]
            if pool:
                layers.append(_pool())
            c_in = width
        layers.append(_conv_bn(c_in, embed_dim))
        if pools[3]:
            layers.append(_pool())
        self.stages = nn.Sequential(*layers)
        self.rpe = nn.Sequential(make_neuron(neuron, neuron_kwargs),
                                 _conv_bn(embed_dim, embed_dim))

    def forward(self, x: Tensor) -> Tensor:
        _check_image("SpikeDrivenPatchSplitting", x, self.in_channels)
        # snn.layers.lean.run_sequential: the same values, with less kept for backward
        u = run_sequential(self.stages, x)
        return u + run_sequential(self.rpe, u)


class QKFormerPatchEmbedInit(nn.Module):
    """QKFormer's first patch embedding (stage 1 stem, 4x downsampling).

    ``conv-BN-pool-SN`` to ``D/2`` channels, ``conv-BN-pool-SN`` to ``D``, ``conv-BN-SN``,
    plus a shortcut ``SN(BN(conv1x1/2(.)))`` of the first stage's spikes. Convolutions have no
    bias, as in the authors' code.

    Input ``[T, B, C, H, W]``; output ``[T, B, D, H/4, W/4]`` (values in {0, 1, 2}).
    """

    def __init__(self, in_channels: int, embed_dim: int, neuron: NeuronFactory = LIF,
                 neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        if embed_dim % 2:
            raise ValueError(f"embed_dim must be even, got {embed_dim}")
        self.in_channels = int(in_channels)
        hidden = embed_dim // 2
        n = (neuron, neuron_kwargs)
        self.stage1 = nn.Sequential(_conv_bn(in_channels, hidden), _pool(),
                                    make_neuron(*n))
        self.stage2 = nn.Sequential(_conv_bn(hidden, embed_dim), _pool(),
                                    make_neuron(*n),
                                    _conv_bn(embed_dim, embed_dim), make_neuron(*n))
        self.shortcut = nn.Sequential(_conv_bn(hidden, embed_dim, 1, 2),
                                      make_neuron(*n))

    def forward(self, x: Tensor) -> Tensor:
        _check_image("QKFormerPatchEmbedInit", x, self.in_channels)
        # snn.layers.lean.run_sequential: the same values, with less kept for backward
        x = run_sequential(self.stage1, x)
        return run_sequential(self.stage2, x) + run_sequential(self.shortcut, x)


class QKFormerPatchEmbed(nn.Module):
    """QKFormer's patch embedding between stages (2x downsampling).

    ``conv-BN-pool-SN``, ``conv-BN-SN``, plus the shortcut ``SN(BN(conv1x1/2(x)))``.

    Input ``[T, B, C, H, W]``; output ``[T, B, D, H/2, W/2]``.
    """

    def __init__(self, in_channels: int, embed_dim: int, neuron: NeuronFactory = LIF,
                 neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        self.in_channels = int(in_channels)
        n = (neuron, neuron_kwargs)
        self.body = nn.Sequential(_conv_bn(in_channels, embed_dim), _pool(),
                                  make_neuron(*n),
                                  _conv_bn(embed_dim, embed_dim), make_neuron(*n))
        self.shortcut = nn.Sequential(_conv_bn(in_channels, embed_dim, 1, 2),
                                      make_neuron(*n))

    def forward(self, x: Tensor) -> Tensor:
        _check_image("QKFormerPatchEmbed", x, self.in_channels)
        # snn.layers.lean.run_sequential: the same values, with less kept for backward
        return run_sequential(self.body, x) + run_sequential(self.shortcut, x)
