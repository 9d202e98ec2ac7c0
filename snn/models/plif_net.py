"""The convolutional SNN of Fang et al. (2021) for N-MNIST, DVS128 Gesture and CIFAR10-DVS.

Reference: W. Fang, Z. Yu, Y. Chen, T. Masquelier, T. Huang, Y. Tian, "Incorporating Learnable
Membrane Time Constant to Enhance Learning of Spiking Neural Networks", ICCV 2021.

The network is ``{c{C}k3s1-BN-PLIF-MPk2s2} x N - DP - FC{H} - PLIF - DP - FC{10K} - PLIF -
APk10s10``: ``N`` blocks of 3x3 convolution, batch norm, parametric LIF and 2x2 max pooling,
then two fully connected spiking layers with time-consistent dropout and a voting layer that
averages groups of 10 output neurons per class. The paper uses ``C = 128`` and

============== ======= ====== ====== ==============
dataset        input   blocks hidden T (frames)
============== ======= ====== ====== ==============
N-MNIST        34x34   2      2048   10
DVS128 Gesture 128x128 5      512    20
CIFAR10-DVS    128x128 4      512    20
============== ======= ====== ====== ==============
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from snn.layers import TimeDistributed
from snn.models.blocks import TimeConsistentDropout, VotingLayer, conv_bn, make_neuron

__all__ = ["PLIFNet", "plif_cifar10dvs", "plif_dvs_gesture", "plif_nmnist"]


class PLIFNet(nn.Module):
    """Convolutional SNN of Fang et al. (2021), input ``[T, B, C, H, W]`` (event frames),
    output ``[T, B, num_classes]`` (voting firing rates of the last layer).

    Args:
        in_channels: input channels (2 polarities for event frames).
        input_size: height and width of the input (square).
        num_classes: number of classes.
        channels: channels of every convolution.
        blocks: number of conv-BN-PLIF-maxpool blocks.
        hidden: size of the hidden fully connected layer.
        voters: output neurons per class.
        dropout: probability of the time-consistent dropout.
        neuron: neuron name in :data:`snn.neurons.NEURONS` (``"plif"`` in the paper).
        neuron_kwargs: options overriding the PLIF defaults (tau 2, hard reset, ...).
    """

    def __init__(
        self,
        in_channels: int = 2,
        input_size: int = 34,
        num_classes: int = 10,
        *,
        channels: int = 128,
        blocks: int = 2,
        hidden: int = 2048,
        voters: int = 10,
        dropout: float = 0.5,
        neuron: str = "plif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        size = input_size
        layers: list[nn.Module] = []
        for i in range(blocks):
            if size < 2:
                raise ValueError(
                    f"PLIFNet: input_size {input_size} is too small for {blocks} pooling blocks"
                )
            layers += [
                TimeDistributed(*conv_bn(in_channels if i == 0 else channels, channels)),
                make_neuron(neuron, neuron_kwargs),
                TimeDistributed(nn.MaxPool2d(2, 2)),
            ]
            size //= 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            TimeDistributed(nn.Flatten()),
            TimeConsistentDropout(dropout),
            TimeDistributed(nn.Linear(channels * size * size, hidden, bias=False)),
            make_neuron(neuron, neuron_kwargs),
            TimeConsistentDropout(dropout),
            TimeDistributed(nn.Linear(hidden, num_classes * voters, bias=False)),
            make_neuron(neuron, neuron_kwargs),
            VotingLayer(voters),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``[T, B, C, H, W] -> [T, B, num_classes]``."""
        if x.dim() != 5:
            raise ValueError(f"PLIFNet expects frames [T, B, C, H, W], got {tuple(x.shape)}")
        return self.classifier(self.features(x))


def plif_nmnist(**kwargs: Any) -> PLIFNet:
    """PLIFNet for N-MNIST: 2 blocks of 128 channels on 34x34 frames, FC 2048, 10 classes."""
    options = {"in_channels": 2, "input_size": 34, "num_classes": 10, "blocks": 2, "hidden": 2048}
    return PLIFNet(**{**options, **kwargs})


def plif_dvs_gesture(**kwargs: Any) -> PLIFNet:
    """PLIFNet for DVS128 Gesture: 5 blocks of 128 channels on 128x128 frames, FC 512, 11
    classes."""
    options = {"in_channels": 2, "input_size": 128, "num_classes": 11, "blocks": 5, "hidden": 512}
    return PLIFNet(**{**options, **kwargs})


def plif_cifar10dvs(**kwargs: Any) -> PLIFNet:
    """PLIFNet for CIFAR10-DVS: 4 blocks of 128 channels on 128x128 frames, FC 512, 10
    classes."""
    options = {"in_channels": 2, "input_size": 128, "num_classes": 10, "blocks": 4, "hidden": 512}
    return PLIFNet(**{**options, **kwargs})
