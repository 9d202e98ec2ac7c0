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
    "Recurrent",
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


class Recurrent(nn.Module):
    r"""A fully connected layer of spiking neurons with recurrent connections:

    .. math:: I_t = W x_t + b + V s_{t-1}, \qquad s_t = \text{neuron}(I_t)

    The feed-forward term is computed for the whole sequence at once; the recurrent term needs
    the time loop. The layer follows its inner neuron: with ``step_mode="sequence"`` it takes
    ``[T, B, in_features]``, with ``"single"`` one step ``[B, in_features]`` per call
    (:func:`snn.set_step_mode` switches both). Calls continue from the previous one exactly as
    the neuron does: :func:`snn.reset` (which clears the neuron) also restarts the recurrence
    from zero spikes, and :func:`snn.detach` (which detaches the neuron's state) also cuts the
    graph through the kept spikes.

    Args:
        in_features: input size.
        out_features: number of neurons.
        neuron: the inner neuron module (any spiking neuron of :mod:`snn.neurons`).
        bias: bias of the feed-forward weights.
    """

    def __init__(
        self, in_features: int, out_features: int, neuron: BaseNeuron, *, bias: bool = True
    ):
        super().__init__()
        if not isinstance(neuron, BaseNeuron) or not neuron.spiking:
            raise TypeError(f"neuron must be a spiking neuron module, got {type(neuron).__name__}")
        self.input = nn.Linear(in_features, out_features, bias=bias)
        self.recurrent = nn.Linear(out_features, out_features, bias=False)
        self.neuron = neuron
        # (spikes of the last step, the neuron state object they belong to)
        self._last: tuple[Tensor, Any] | None = None

    def _previous(self, current: Tensor) -> Tensor:
        state = self.neuron.state
        if self._last is None or state is None:
            return current.new_zeros(current.shape)
        spikes, owner = self._last
        return spikes if owner is state else spikes.detach()

    def _step(self, current: Tensor) -> Tensor:
        current = current + self.recurrent(self._previous(current))
        if self.neuron.step_mode == "sequence":
            s = self.neuron(current.unsqueeze(0))[0]
        else:
            s = self.neuron(current)
        self._last = (s, self.neuron.state)
        return s

    def forward(self, x: Tensor) -> Tensor:
        """``[T, B, in] -> [T, B, out]`` (sequence mode) or ``[B, in] -> [B, out]`` (single)."""
        if self.neuron.step_mode == "single":
            if x.dim() != 2:
                raise ValueError(f"Recurrent expects one step [B, in], got {tuple(x.shape)}")
            return self._step(self.input(x))
        if x.dim() != 3:
            raise ValueError(f"Recurrent expects a sequence [T, B, in], got {tuple(x.shape)}")
        currents = self.input(x)
        return torch.stack([self._step(c) for c in currents.unbind(0)])

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_last"] = None if self._last is None else (self._last[0].detach(), None)
        return d

    def extra_repr(self) -> str:
        return f"in_features={self.input.in_features}, out_features={self.input.out_features}"
