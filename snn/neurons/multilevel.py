"""Neuron modules with non-binary spikes: integer (I-LIF) and ternary (signed) LIF."""

from __future__ import annotations

from typing import Any

from snn.functional.multilevel import multilevel_to_binary
from snn.neurons.base import SpikingNeuron, decay_from

__all__ = ["ILIF", "MultiLevelLIF", "TernaryLIF"]


class MultiLevelLIF(SpikingNeuron):
    r"""Integer LIF neuron (I-LIF of SpikeYOLO, Luo et al., ECCV 2024, arXiv:2407.20708):
    spikes are integers :math:`0..D` in training and equal :math:`D` binary sub-steps at
    inference (see :func:`snn.functional.ilif_step` for the equations and the readings taken).

    Registry name ``"ilif"`` (``snn.NEURONS["ilif"]``); also exported as :data:`ILIF`.

    .. math:: h_t = \beta v_{t-1} + x_t, \quad
              s_t = \operatorname{round}(\operatorname{clip}(h_t/\vartheta, 0, D)), \quad
              v_t = h_t - \vartheta s_t

    Args:
        beta: membrane decay per step in ``[0, 1]`` (default 0.25, the authors' code).
        levels: the largest integer spike :math:`D` (default 4, as in SpikeYOLO).
        tau: membrane time constant (alternative to ``beta``).
        dt: simulation step for ``tau``.
        decay_input: scale the input by :math:`1-\beta`.
        threshold: the membrane value of one spike.
        reset: ``"subtract"`` (the paper) or ``"none"``.
        detach_reset: stop the gradient through the reset term.
        learn_threshold: make the threshold a trainable parameter.
        **kwargs: ``step_mode``, ``backend``, ``record``.

    The gradient is the paper's rectangular straight-through estimator, so this neuron takes
    no ``surrogate``. Time-first input ``[T, B, ...]`` in sequence mode.

    Example:
        >>> neuron = MultiLevelLIF(levels=4)
        >>> neuron(torch.tensor([[[2.6]], [[0.2]]]))[:, 0, 0].tolist()   # [T, B, N]
        [3.0, 0.0]
    """

    kind = "ilif"

    def __init__(
        self,
        beta: float | None = None,
        *,
        levels: int = 4,
        tau: float | None = None,
        dt: float = 1.0,
        decay_input: bool = False,
        **kwargs: Any,
    ):
        for name in ("surrogate", "v_reset"):
            if name in kwargs:
                raise TypeError(f"MultiLevelLIF takes no {name!r} (integer spikes use the "
                                "paper's straight-through gradient and a soft reset)")
        if kwargs.get("reset", "subtract") == "hard":
            raise ValueError("MultiLevelLIF: reset must be 'subtract' or 'none'")
        super().__init__(**kwargs)
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be an int >= 1, got {levels!r}")
        self.levels = levels
        self.beta = decay_from("beta", beta, tau, dt, 0.25)
        self.decay_input = bool(decay_input)

    def neuron_params(self) -> dict[str, Any]:
        return {"beta": self.beta, "levels": self.levels, "threshold": self.threshold,
                "reset": self.reset, "decay_input": self.decay_input,
                "detach_reset": self.detach_reset}

    def to_binary(self, spikes: Any) -> Any:
        """The binary sub-steps ``[T * D, B, ...]`` of integer spikes ``[T, B, ...]`` (see
        :func:`snn.functional.multilevel_to_binary`)."""
        return multilevel_to_binary(spikes, self.levels)


ILIF = MultiLevelLIF
"""The I-LIF of SpikeYOLO: another name of :class:`MultiLevelLIF`."""


class TernaryLIF(SpikingNeuron):
    r"""Ternary (signed) LIF neuron: spikes :math:`-1, 0, +1` (Guo et al., "Ternary Spike",
    AAAI 2024, arXiv:2312.06372; see :func:`snn.functional.ternary_lif_step`).

    Registry name ``"ternary_lif"`` (``snn.NEURONS["ternary_lif"]``).

    .. math:: h_t = \beta v_{t-1} + x_t, \quad
              s_t = \Theta(h_t - \vartheta) - \Theta(-h_t - \vartheta), \quad
              v_t = h_t - \vartheta s_t \ (\text{subtract})

    Args:
        beta: membrane decay per step in ``[0, 1]`` (default 0.5).
        tau: membrane time constant (alternative to ``beta``).
        dt: simulation step for ``tau``.
        decay_input: scale the input by :math:`1-\beta`.
        **kwargs: threshold, reset, surrogate and mode options of
            :class:`~snn.neurons.base.SpikingNeuron`.

    Time-first input ``[T, B, ...]`` in sequence mode.
    """

    kind = "ternary_lif"

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
        self.beta = decay_from("beta", beta, tau, dt, 0.5)
        self.decay_input = bool(decay_input)

    def neuron_params(self) -> dict[str, Any]:
        return {"beta": self.beta, "decay_input": self.decay_input, **self.spike_params()}
