"""Spiking VGG with batch norm, for event frames (CIFAR10-DVS) and static images.

The VGG layout of Simonyan and Zisserman (2015) with every ReLU replaced by a spiking neuron
and batch norm after each convolution, as used for CIFAR10-DVS by e.g. Deng et al.
(Temporal Efficient Training, ICLR 2022) and in SpikingJelly's ``spiking_vgg`` models. The
classifier averages the last feature map over space and applies one linear layer per time step;
the output ``[T, B, num_classes]`` is the per-step logit (average it over time to classify).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from snn.layers import TimeDistributed
from snn.models.blocks import conv_bn, make_neuron

__all__ = ["VGG_CONFIGS", "SpikingVGG", "spiking_vgg11", "spiking_vgg13", "spiking_vgg16"]

VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        "M",
    ),
}
"""Channels of each convolution, ``"M"`` for 2x2 max pooling."""


class SpikingVGG(nn.Module):
    """Spiking VGG: input ``[T, B, C, H, W]``, output ``[T, B, num_classes]``.

    Args:
        config: a key of :data:`VGG_CONFIGS`.
        in_channels: input channels (2 for event frames, 3 for images).
        num_classes: number of classes.
        width: multiplier of every layer's channels (``0.25`` for a quarter-width network).
        dropout: dropout before the classifier.
        neuron: neuron name in :data:`snn.neurons.NEURONS`.
        neuron_kwargs: options overriding the neuron defaults.
    """

    def __init__(
        self,
        config: str = "vgg11",
        in_channels: int = 2,
        num_classes: int = 10,
        *,
        width: float = 1.0,
        dropout: float = 0.0,
        neuron: str = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        if config not in VGG_CONFIGS:
            raise ValueError(
                f"unknown VGG config {config!r}; expected one of {sorted(VGG_CONFIGS)}"
            )
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG_CONFIGS[config]:
            if item == "M":
                layers.append(TimeDistributed(nn.MaxPool2d(2, 2)))
                continue
            out = max(1, round(int(item) * width))
            layers += [TimeDistributed(*conv_bn(channels, out)), make_neuron(neuron, neuron_kwargs)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = TimeDistributed(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``[T, B, C, H, W] -> [T, B, num_classes]``."""
        if x.dim() != 5:
            raise ValueError(f"SpikingVGG expects [T, B, C, H, W], got {tuple(x.shape)}")
        return self.classifier(self.features(x))


def spiking_vgg11(**kwargs: Any) -> SpikingVGG:
    """Spiking VGG-11 with batch norm (default: 2 input channels, 10 classes)."""
    return SpikingVGG("vgg11", **kwargs)


def spiking_vgg13(**kwargs: Any) -> SpikingVGG:
    """Spiking VGG-13 with batch norm."""
    return SpikingVGG("vgg13", **kwargs)


def spiking_vgg16(**kwargs: Any) -> SpikingVGG:
    """Spiking VGG-16 with batch norm."""
    return SpikingVGG("vgg16", **kwargs)
