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
    if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], BaseNeuron):
        if not any(isinstance(m, BaseNeuron) for m in list(module)[:-1]):
            return module[-1]
    raise TypeError(
        "Recurrent needs a neuron module (snn.neurons) or an nn.Sequential of stateless layers "
        f"ending in one, got {type(module).__name__}"
    )


class Recurrent(BaseNeuron):
    r"""A neuron whose input is the external input plus a transform of its own previous output.

    .. math:: y_t = \operatorname{neuron}\big(x_t + W s_{t-1} + b\big), \qquad s_{-1} = 0

    so at the first step the neuron receives ``x_0 + b``. This is the recurrent layer of NIR (a
    neuron node and an ``Affine``/``Linear`` node in a two-node cycle), of snnTorch's
    ``RLeaky``/``RSynaptic`` and of Norse's recurrent cells.

    The layer runs its time loop itself (the recurrence forbids a whole-sequence kernel).
    :func:`snn.reset` clears both the kept previous output and the neuron's state.

    Args:
        neuron: the neuron module (any :class:`~snn.neurons.base.BaseNeuron`), or an
            ``nn.Sequential`` of elementwise stateless layers ending in one (an input gain).
        recurrent: the transform of the previous output (usually ``nn.Linear(N, N)``).
        step_mode: ``"sequence"`` (input ``[T, B, N]``) or ``"single"`` (input ``[B, N]``).

    Example:
        >>> layer = Recurrent(LIF(beta=0.9), nn.Linear(16, 16, bias=False))
        >>> layer(torch.rand(10, 4, 16)).shape
        torch.Size([10, 4, 16])
    """

    kind = "recurrent"
    spiking = False  # the inner neuron is the one monitors should record

    def __init__(self, neuron: BaseNeuron, recurrent: nn.Module, *, step_mode: str = "sequence"):
        super().__init__(step_mode=step_mode)
        _last_neuron(neuron)
        if isinstance(recurrent, BaseNeuron) or not isinstance(recurrent, nn.Module):
            raise TypeError(
                "Recurrent needs a stateless module for the recurrent connection, got "
                f"{type(recurrent).__name__}"
            )
        self.neuron = neuron
        self.recurrent = recurrent

    def neuron_params(self) -> dict[str, Any]:
        return {}

    def forward(self, x: Tensor, state: Any = None) -> Tensor:
        """Run one step (``[B, ...]``) or a sequence (``[T, B, ...]``) by ``step_mode``."""
        if state is not None:
            self.state = state
        if self.step_mode == "single":
            check_input(x)
            return self._step(x)
        check_sequence(x)
        return torch.stack([self._step(x_t) for x_t in x.unbind(0)])

    def _step(self, x: Tensor) -> Tensor:
        prev = torch.zeros_like(x) if self.state is None else self.state.s
        h = x + self.recurrent(prev)
        if _last_neuron(self.neuron).step_mode == "single":
            s = self.neuron(h)
        else:
            s = self.neuron(h.unsqueeze(0))[0]
        self.state = RecurrentState(s)
        return s

    def extra_repr(self) -> str:
        return "" if self.step_mode == "sequence" else f"step_mode={self.step_mode!r}"
