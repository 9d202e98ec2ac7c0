"""The demo's two networks: a small CNN (to convert) and the same architecture as an SNN
trained directly with surrogate gradients."""

from __future__ import annotations

from torch import nn

import snn
from snn.layers import TimeDistributed

__all__ = ["cnn", "spiking_cnn"]


def cnn(width: int = 16) -> nn.Sequential:
    """Conv-BN-ReLU-AvgPool twice and a linear classifier, for ``[B, 1, 8, 8]`` digits."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * width, 10),
    )


def spiking_cnn(width: int = 16, beta: float = 0.5) -> nn.Sequential:
    """The same layers with LIF neurons instead of ReLUs; input ``[T, B, 1, 8, 8]`` (the image
    repeated at every step), output ``[T, B, 10]`` (the classifier's current, averaged over
    time by the caller)."""
    return nn.Sequential(
        TimeDistributed(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)),
        snn.LIF(beta, decay_input=False, detach_reset=True),
        TimeDistributed(
            nn.AvgPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
        ),
        snn.LIF(beta, decay_input=False, detach_reset=True),
        TimeDistributed(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8 * width, 10)),
    )
