r"""A spiking layer with a recurrent connection from its own spikes of the previous step."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from snn.functional._common import check_input, check_sequence
from snn.neurons.base import BaseNeuron

__all__ = ["Recurrent", "RecurrentState"]


class RecurrentState(NamedTuple):
    """State of :class:`Recurrent` besides its neuron's own.

    Attributes:
        s: output of the neuron at the previous step, ``[B, ...]``.
    """

    s: Tensor


def _last_neuron(module: nn.Module) -> BaseNeuron:
    if isinstance(module, BaseNeuron):
        return module
    if (
        isinstance(module, nn.Sequential)
        and len(module)
        and isinstance(module[-1], BaseNeuron)
        and not any(isinstance(m, BaseNeuron) for m in list(module)[:-1])
    ):
        return module[-1]
    raise TypeError(
        "Recurrent needs a neuron module (snn.neurons) or an nn.Sequential of stateless layers "
        f"ending in one, got {type(module).__name__}"
    )


class _Memory(BaseNeuron):
    """Holds a :class:`Recurrent` layer's previous output as neuron state, so that
    :func:`snn.reset` and :func:`snn.detach` reach it. Never called: it does no work of its own
    (operation counters and monitors see the inner neuron and the recurrent transform)."""

    kind = "memory"
    spiking = False

    def neuron_params(self) -> dict[str, Any]:
        return {}

    def forward(self, x: Tensor, state: Any = None) -> Tensor:  # pragma: no cover - guard
        raise RuntimeError("the memory of a Recurrent layer is not called")


class Recurrent(nn.Module):
    r"""A neuron whose input is the external input plus a transform of its own previous output.

    .. math:: s_t = \operatorname{neuron}\big(F(x_t) + r_t\big), \qquad
              r_t = W s_{t-1} + b, \qquad r_0 = 0

    where :math:`F` is the optional ``feedforward`` transform (identity when not given), applied
    to the whole sequence at once before the time loop.

    The recurrent signal is delayed by one step and starts at zero, as in a NIR graph where a
    neuron node and an ``Affine``/``Linear`` node form a cycle (the semantics of NIR's reference
    executor, ``nirtorch``). snnTorch's ``RLeaky`` differs only at the first step, where it adds
    the bias ``b`` (it evaluates the recurrent layer on zero spikes).

    The layer runs its time loop itself (the recurrence forbids a whole-sequence kernel) and
    follows its neuron's step mode: ``[T, B, N]`` in sequence mode, ``[B, N]`` in single-step
    mode (:func:`snn.set_step_mode` switches both). :func:`snn.reset` clears the kept previous
    output and the neuron's state.

    Args:
        neuron: the neuron module (any :class:`~snn.neurons.base.BaseNeuron`), or an
            ``nn.Sequential`` of elementwise stateless layers ending in one (an input gain).
        recurrent: the transform of the previous output (usually ``nn.Linear(N, N)``).
        feedforward: optional stateless transform of the external input (usually
            ``nn.Linear(in_features, N)``); it must accept any leading dimensions, as
            ``nn.Linear`` does, since it sees ``[T, B, ...]`` or ``[B, ...]`` by step mode.

    Example:
        >>> layer = Recurrent(LIF(beta=0.9), nn.Linear(16, 16, bias=False),
        ...                   feedforward=nn.Linear(8, 16))
        >>> layer(torch.rand(10, 4, 8)).shape
        torch.Size([10, 4, 16])
    """

    def __init__(
        self, neuron: nn.Module, recurrent: nn.Module, feedforward: nn.Module | None = None
    ):
        super().__init__()
        inner = _last_neuron(neuron)
        for what, module in (("recurrent connection", recurrent), ("feedforward", feedforward)):
            if module is None and what == "feedforward":
                continue
            if isinstance(module, BaseNeuron) or not isinstance(module, nn.Module):
                raise TypeError(
                    f"Recurrent needs a stateless module for the {what}, got "
                    f"{type(module).__name__}"
                )
        self.feedforward = feedforward
        self.neuron = neuron
        self.recurrent = recurrent
        self.memory = _Memory(step_mode=inner.step_mode)

    @property
    def step_mode(self) -> str:
        """The inner neuron's step mode."""
        return _last_neuron(self.neuron).step_mode

    def forward(self, x: Tensor) -> Tensor:
        """Run one step (``[B, ...]``) or a sequence (``[T, B, ...]``) by the step mode."""
        if self.step_mode == "single":
            check_input(x)
        else:
            check_sequence(x)
        if self.feedforward is not None:
            x = self.feedforward(x)
        if self.step_mode == "single":
            return self._step(x, single=True)
        return torch.stack([self._step(x_t, single=False) for x_t in x.unbind(0)])

    def _step(self, x: Tensor, single: bool) -> Tensor:
        prev = self.memory.state
        h = x if prev is None else x + self.recurrent(prev.s)
        s = self.neuron(h) if single else self.neuron(h.unsqueeze(0))[0]
        self.memory.state = RecurrentState(s)
        return s
