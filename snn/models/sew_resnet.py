"""Spike-element-wise ResNet (SEW-ResNet) and the plain spiking ResNet.

References:
    W. Fang, Z. Yu, Y. Chen, T. Huang, T. Masquelier, Y. Tian, "Deep Residual Learning in
    Spiking Neural Networks", NeurIPS 2021 (SEW-ResNet).
    Y. Hu, H. Tang, G. Pan, "Spiking Deep Residual Networks", IEEE TNNLS 2021, and Zheng et al.
    "Going Deeper With Directly-Trained Larger Spiking Neural Networks", AAAI 2021 (the spiking
    ResNet with the neuron after the addition).

A SEW basic block computes ``A = SN(BN(conv(SN(BN(conv(S))))))`` and combines it with the
block's input spikes ``S`` (or their downsampled version, conv-BN-SN) element-wise:
``ADD: A + S``, ``AND: A * S``, ``IAND: (1 - A) * S``. The plain spiking ResNet instead adds
the shortcut to the second batch norm's output and then fires: ``SN(BN(conv(...)) + S)``.

Both take ``[T, B, C, H, W]`` and return ``[T, B, num_classes]`` (per-step logits). The
``"imagenet"`` stem is the 7x7/2 convolution with 3x3/2 max pooling; the ``"small"`` stem (for
CIFAR-sized inputs and event frames) is one 3x3/1 convolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from snn.layers import TimeDistributed
from snn.models.blocks import conv_bn, make_neuron

__all__ = [
    "CONNECT_FUNCTIONS",
    "SEWBasicBlock",
    "SEWResNet",
    "SpikingBasicBlock",
    "sew_resnet18",
    "sew_resnet34",
    "spiking_resnet18",
    "spiking_resnet34",
]

CONNECT_FUNCTIONS = ("add", "and", "iand")
"""Element-wise functions combining a SEW block's output ``A`` with its shortcut ``S``."""


class SEWBasicBlock(nn.Module):
    """SEW basic block; input and output are spike sequences ``[T, B, C, H, W]``.

    Args:
        in_channels: input channels.
        channels: output channels.
        stride: stride of the first convolution.
        connect: ``"add"``, ``"and"`` or ``"iand"``.
        neuron: neuron name; ``neuron_kwargs`` override its defaults.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        connect: str = "add",
        neuron: str = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        if connect not in CONNECT_FUNCTIONS:
            raise ValueError(f"connect must be one of {CONNECT_FUNCTIONS}, got {connect!r}")
        self.connect = connect
        self.body = nn.Sequential(
            TimeDistributed(*conv_bn(in_channels, channels, 3, stride)),
            make_neuron(neuron, neuron_kwargs),
            TimeDistributed(*conv_bn(channels, channels)),
            make_neuron(neuron, neuron_kwargs),
        )
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                TimeDistributed(*conv_bn(in_channels, channels, 1, stride)),
                make_neuron(neuron, neuron_kwargs),
            )

    def forward(self, x: Tensor) -> Tensor:
        a = self.body(x)
        s = x if self.downsample is None else self.downsample(x)
        if self.connect == "add":
            return a + s
        if self.connect == "and":
            return a * s
        return (1 - a) * s

    def extra_repr(self) -> str:
        return f"connect={self.connect!r}"


class SpikingBasicBlock(nn.Module):
    """Plain spiking ResNet block: the shortcut is added before the last neuron fires."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        connect: str | None = None,
        neuron: str = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        if connect is not None:
            raise ValueError("the plain spiking ResNet block has no connect function")
        self.body = nn.Sequential(
            TimeDistributed(*conv_bn(in_channels, channels, 3, stride)),
            make_neuron(neuron, neuron_kwargs),
            TimeDistributed(*conv_bn(channels, channels)),
        )
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = TimeDistributed(*conv_bn(in_channels, channels, 1, stride))
        self.neuron = make_neuron(neuron, neuron_kwargs)

    def forward(self, x: Tensor) -> Tensor:
        s = x if self.downsample is None else self.downsample(x)
        return self.neuron(self.body(x) + s)


class SEWResNet(nn.Module):
    """Spiking ResNet with SEW (``block="sew"``) or plain (``block="spiking"``) basic blocks.

    Args:
        layers: number of blocks in each of the four stages (``(2, 2, 2, 2)``: ResNet-18).
        in_channels: input channels.
        num_classes: number of classes.
        block: ``"sew"`` or ``"spiking"``.
        connect: SEW connect function (``"add"``, ``"and"``, ``"iand"``).
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max pool) or ``"small"`` (3x3/1 conv).
        width: multiplier of the stage widths 64, 128, 256, 512.
        neuron: neuron name in :data:`snn.neurons.NEURONS`.
        neuron_kwargs: options overriding the neuron defaults.
    """

    def __init__(
        self,
        layers: Sequence[int] = (2, 2, 2, 2),
        in_channels: int = 3,
        num_classes: int = 1000,
        *,
        block: str = "sew",
        connect: str = "add",
        stem: str = "imagenet",
        width: float = 1.0,
        neuron: str = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        if block not in ("sew", "spiking"):
            raise ValueError(f"block must be 'sew' or 'spiking', got {block!r}")
        if stem not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small', got {stem!r}")
        if width <= 0 or len(layers) != 4 or min(layers) < 1:
            raise ValueError(
                f"SEWResNet needs a positive width and four stage depths >= 1, got width={width}, "
                f"layers={tuple(layers)}"
            )
        widths = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        if stem == "imagenet":
            stem_layers = [
                *conv_bn(in_channels, widths[0], 7, 2),
            ]
            pool: list[nn.Module] = [TimeDistributed(nn.MaxPool2d(3, 2, 1))]
        else:
            stem_layers = conv_bn(in_channels, widths[0], 3, 1)
            pool = []
        self.stem = nn.Sequential(
            TimeDistributed(*stem_layers), make_neuron(neuron, neuron_kwargs), *pool
        )
        cls = SEWBasicBlock if block == "sew" else SpikingBasicBlock
        extra = {"connect": connect} if block == "sew" else {}
        stages: list[nn.Module] = []
        channels = widths[0]
        for i, (depth, out) in enumerate(zip(layers, widths)):
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(
                    cls(channels, out, stride, neuron=neuron, neuron_kwargs=neuron_kwargs, **extra)
                )
                channels = out
        self.stages = nn.Sequential(*stages)
        self.head = TimeDistributed(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        """``[T, B, C, H, W] -> [T, B, num_classes]``."""
        if x.dim() != 5:
            raise ValueError(f"SEWResNet expects [T, B, C, H, W], got {tuple(x.shape)}")
        return self.head(self.stages(self.stem(x)))


def sew_resnet18(**kwargs: Any) -> SEWResNet:
    """SEW-ResNet-18 (ADD connect by default; ImageNet stem, 3 channels, 1000 classes)."""
    return SEWResNet((2, 2, 2, 2), **kwargs)


def sew_resnet34(**kwargs: Any) -> SEWResNet:
    """SEW-ResNet-34."""
    return SEWResNet((3, 4, 6, 3), **kwargs)


def spiking_resnet18(**kwargs: Any) -> SEWResNet:
    """Plain spiking ResNet-18 (neuron after the residual addition)."""
    return SEWResNet((2, 2, 2, 2), block="spiking", **kwargs)


def spiking_resnet34(**kwargs: Any) -> SEWResNet:
    """Plain spiking ResNet-34."""
    return SEWResNet((3, 4, 6, 3), block="spiking", **kwargs)
