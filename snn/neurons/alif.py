"""Adaptive LIF module."""

from __future__ import annotations

from typing import Any

from snn.neurons.base import SpikingNeuron, decay_from

__all__ = ["ALIF"]


class ALIF(SpikingNeuron):
    r"""Adaptive LIF neuron: each spike raises the threshold by ``adapt_scale`` times the
    adaptation trace, which decays with ``beta_adapt`` (see :func:`snn.functional.alif_step`).

    Args:
        beta: membrane decay per step (default 0.9), or give ``tau``.
        beta_adapt: adaptation decay per step (default 0.99), or give ``tau_adapt``.
        adapt_scale: threshold increase per unit of adaptation (default 1.8, Bellec et al.).
        tau: membrane time constant.
        tau_adapt: adaptation time constant.
        dt: simulation step for the time constants.
        decay_input: scale the input by :math:`1-\beta`.
        **kwargs: threshold, reset, surrogate and mode options of
            :class:`~snn.neurons.base.SpikingNeuron`.
    """

    kind = "alif"

    def __init__(
        self,
        beta: float | None = None,
        beta_adapt: float | None = None,
        adapt_scale: float = 1.8,
        *,
        tau: float | None = None,
        tau_adapt: float | None = None,
        dt: float = 1.0,
        decay_input: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.beta = decay_from("beta", beta, tau, dt, 0.9)
        self.beta_adapt = decay_from("beta_adapt", beta_adapt, tau_adapt, dt, 0.99)
        if adapt_scale < 0:
            raise ValueError(f"adapt_scale must be >= 0, got {adapt_scale}")
        self.adapt_scale = float(adapt_scale)
        self.decay_input = bool(decay_input)

    def neuron_params(self) -> dict[str, Any]:
        return {
            "beta": self.beta,
            "beta_adapt": self.beta_adapt,
            "adapt_scale": self.adapt_scale,
            "decay_input": self.decay_input,
            **self.spike_params(),
        }
