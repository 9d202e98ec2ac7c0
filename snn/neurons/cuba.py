"""Current-based LIF module."""

from __future__ import annotations

from typing import Any

from snn.neurons.base import SpikingNeuron, decay_from

__all__ = ["CubaLIF"]


class CubaLIF(SpikingNeuron):
    r"""Current-based LIF neuron: a synaptic current with decay :math:`\alpha` feeds a membrane
    with decay :math:`\beta` (see :func:`snn.functional.cuba_lif_step`).

    Args:
        alpha: synaptic decay per step (default 0.8), or give ``tau_syn``.
        beta: membrane decay per step (default 0.9), or give ``tau_mem``.
        tau_syn: synaptic time constant, :math:`\alpha = e^{-dt/\tau_\text{syn}}`.
        tau_mem: membrane time constant, :math:`\beta = e^{-dt/\tau_\text{mem}}`.
        dt: simulation step for the time constants.
        decay_input: scale the current entering the membrane by :math:`1-\beta`.
        **kwargs: threshold, reset, surrogate and mode options of
            :class:`~snn.neurons.base.SpikingNeuron`.
    """

    kind = "cuba_lif"

    def __init__(
        self,
        alpha: float | None = None,
        beta: float | None = None,
        *,
        tau_syn: float | None = None,
        tau_mem: float | None = None,
        dt: float = 1.0,
        decay_input: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.alpha = decay_from("alpha", alpha, tau_syn, dt, 0.8)
        self.beta = decay_from("beta", beta, tau_mem, dt, 0.9)
        self.decay_input = bool(decay_input)

    def neuron_params(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "decay_input": self.decay_input,
            **self.spike_params(),
        }
