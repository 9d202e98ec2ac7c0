"""IF, LIF, parametric LIF and leaky-integrator modules."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from snn.functional._common import check_decay
from snn.neurons.base import BaseNeuron, SpikingNeuron, decay_from

__all__ = ["IF", "LI", "LIF", "ParametricLIF"]


class IF(SpikingNeuron):
    r"""Integrate-and-fire neuron: :math:`h_t = v_{t-1} + x_t` (see
    :func:`snn.functional.if_step`).

    Args:
        **kwargs: threshold, reset, surrogate and mode options of
            :class:`~snn.neurons.base.SpikingNeuron`.

    Example:
        >>> neuron = IF(threshold=1.0)
        >>> spikes = neuron(torch.ones(4, 2, 3) * 0.6)   # [T, B, N]
        >>> spikes[:, 0, 0].tolist()
        [0.0, 1.0, 0.0, 1.0]
    """

    kind = "if"

    def neuron_params(self) -> dict[str, Any]:
        return self.spike_params()


class LIF(SpikingNeuron):
    r"""Leaky integrate-and-fire neuron (see :func:`snn.functional.lif_step`).

    .. math:: h_t = \beta v_{t-1} + x_t \quad(\text{or } (1-\beta)x_t \text{ with decay\_input})

    Give the decay either as the per-step factor ``beta`` or as the membrane time constant
    ``tau`` with the step ``dt`` (same unit): :math:`\beta = e^{-dt/\tau}`.

    Args:
        beta: membrane decay per step in ``[0, 1]`` (default 0.9 when ``tau`` is not given).
        tau: membrane time constant (alternative to ``beta``).
        dt: simulation step for ``tau``.
        decay_input: scale the input by :math:`1-\beta`.
        **kwargs: threshold, reset, surrogate and mode options of
            :class:`~snn.neurons.base.SpikingNeuron`.
    """

    kind = "lif"

    def __init__(
        self,
        beta: float | None = None,
        *,
        tau: float | None = None,
        dt: float = 1.0,
        decay_input: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.beta = decay_from("beta", beta, tau, dt, 0.9)
        self.decay_input = bool(decay_input)

    def neuron_params(self) -> dict[str, Any]:
        return {"beta": self.beta, "decay_input": self.decay_input, **self.spike_params()}


class ParametricLIF(SpikingNeuron):
    r"""LIF neuron with a learnable decay (PLIF, Fang et al. 2021).

    The decay is :math:`\beta = \sigma(w)` with a trainable ``w``, so it stays in ``(0, 1)``.
    ``param_shape`` sets its granularity: ``()`` one decay for the layer, ``(C, 1, 1)`` one per
    channel of a ``[B, C, H, W]`` step, ``(N,)`` one per neuron of a ``[B, N]`` step.

    Args:
        beta: initial decay in ``(0, 1)`` (default 0.5, i.e. :math:`\tau = 2` steps as in PLIF).
        tau: initial time constant (alternative to ``beta``).
        dt: simulation step for ``tau``.
        param_shape: shape of the decay parameter, broadcast against one step ``[B, ...]``.
        decay_input: scale the input by :math:`1-\beta` (the PLIF formulation uses ``True``).
        **kwargs: threshold, reset, surrogate and mode options of
            :class:`~snn.neurons.base.SpikingNeuron`.
    """

    kind = "lif"

    def __init__(
        self,
        beta: float | None = None,
        *,
        tau: float | None = None,
        dt: float = 1.0,
        param_shape: tuple[int, ...] = (),
        decay_input: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        init = decay_from("beta", beta, tau, dt, 0.5)
        if not 0.0 < init < 1.0:
            raise ValueError(f"initial beta of ParametricLIF must lie in (0, 1), got {init}")
        logit = torch.logit(torch.tensor(init, dtype=torch.float64)).item()
        self.w = nn.Parameter(torch.full(tuple(param_shape), logit))
        self.decay_input = bool(decay_input)

    @property
    def beta(self) -> Tensor:
        """The current decay factor :math:`\\sigma(w)`."""
        return torch.sigmoid(self.w)

    def neuron_params(self) -> dict[str, Any]:
        return {"beta": self.beta, "decay_input": self.decay_input, **self.spike_params()}


class LI(BaseNeuron):
    r"""Non-spiking leaky integrator, the usual readout layer: its output is the membrane
    potential (see :func:`snn.functional.li_step`).

    Args:
        beta: decay per step in ``[0, 1]`` (default 0.9).
        tau: time constant (alternative to ``beta``).
        dt: simulation step for ``tau``.
        decay_input: scale the input by :math:`1-\beta`.
        **kwargs: ``step_mode``, ``backend``, ``record``.
    """

    kind = "li"
    spiking = False

    def __init__(
        self,
        beta: float | None = None,
        *,
        tau: float | None = None,
        dt: float = 1.0,
        decay_input: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.beta = decay_from("beta", beta, tau, dt, 0.9)
        check_decay("beta", self.beta)
        self.decay_input = bool(decay_input)

    def neuron_params(self) -> dict[str, Any]:
        return {"beta": self.beta, "decay_input": self.decay_input}
