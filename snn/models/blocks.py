"""Building blocks shared by the spiking reference models.

Every block takes and returns time-first sequences ``[T, B, ...]``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from snn.neurons import BaseNeuron, create_neuron

__all__ = [
    "CONV_NEURON_DEFAULTS",
    "TimeConsistentDropout",
    "VotingLayer",
    "conv_bn",
    "make_neuron",
]

CONV_NEURON_DEFAULTS: dict[str, dict[str, Any]] = {
    # PLIF of Fang et al. (2021): tau initialised to 2 steps, input scaled by (1 - beta), hard
    # reset to 0 with the reset's gradient detached.
    "plif": {"beta": 0.5, "decay_input": True, "reset": "hard", "detach_reset": True},
    "lif": {"beta": 0.5, "decay_input": True, "reset": "hard", "detach_reset": True},
    "if": {"reset": "hard", "detach_reset": True},
}
"""Default options of the neurons in the convolutional models (SpikingJelly's conventions)."""


def make_neuron(name: str, overrides: dict[str, Any] | None = None, **defaults: Any) -> BaseNeuron:
    """A neuron from :data:`snn.neurons.NEURONS`, with a model's defaults for that neuron
    (``CONV_NEURON_DEFAULTS`` merged with ``defaults``) updated by the user's ``overrides``."""
    kwargs = {**CONV_NEURON_DEFAULTS.get(name, {}), **defaults, **(overrides or {})}
    return create_neuron(name, **kwargs)


def conv_bn(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1) -> list:
    """Convolution (no bias, 'same' padding) followed by batch norm."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    ]


class TimeConsistentDropout(nn.Module):
    """Dropout whose mask is drawn once per sequence and shared by every time step, so a
    dropped neuron stays silent for the whole sample (the dropout of Fang et al. 2021).

    Args:
        p: probability of dropping a unit.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability p must lie in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if x.dim() < 2:
            raise ValueError(f"expected a time-first sequence [T, B, ...], got {tuple(x.shape)}")
        keep = torch.empty_like(x[:1]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class VotingLayer(nn.Module):
    """Average each class's group of ``voters`` output neurons: ``[T, B, C * voters]`` ->
    ``[T, B, C]`` (the ``APk10s10`` layer of Fang et al. 2021)."""

    def __init__(self, voters: int = 10):
        super().__init__()
        if voters < 1:
            raise ValueError(f"voters must be >= 1, got {voters}")
        self.voters = int(voters)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % self.voters:
            raise ValueError(
                f"VotingLayer: {x.shape[-1]} outputs are not a multiple of {self.voters} voters"
            )
        return x.unflatten(-1, (x.shape[-1] // self.voters, self.voters)).mean(-1)

    def extra_repr(self) -> str:
        return f"voters={self.voters}"
