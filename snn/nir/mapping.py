r"""The exact correspondence between the library's discrete-time neurons and NIR's
continuous-time nodes.

NIR describes neurons by differential equations; a simulator chooses how to step them. Every
neuron here is a discrete map with per-step decays, so exporting needs the step ``dt`` and the
rule that turned the equation into the map (the *discretisation*). Two rules are registered in
:data:`DISCRETISATIONS`:

``"zoh"`` (exact, the default)
    zero-order hold: the input is constant over a step and the linear equation
    :math:`\tau\dot v = -v + R\,I` is solved exactly, :math:`\beta = e^{-\Delta t/\tau}`,
    :math:`\tau = -\Delta t/\ln\beta`. This is the convention of
    :func:`snn.functional.tau_to_decay`.
``"euler"``
    forward Euler, :math:`\beta = 1 - \Delta t/\tau`, :math:`\tau = \Delta t/(1-\beta)`. This is
    what snnTorch (``dt = 1e-4``) and Norse (``dt = 1e-3`` by default) use in their NIR
    importers and exporters.

Under both rules one step of :math:`\tau\dot v = -v + R\,I` adds :math:`(1-\beta)\,R\,x` to the
membrane, so the resistance follows from the input convention alone:

======================  ========================================================
ours                    NIR
======================  ========================================================
LIF/LI ``decay_input``  :math:`R = 1` (input scaled by :math:`1-\beta`)
LIF/LI plain            :math:`R = 1/(1-\beta)` (input added unscaled)
CuBa LIF current        :math:`w_\text{in} = 1/(1-\alpha)`, i.e. :math:`i_t = \alpha i_{t-1} + x_t`
CuBa LIF membrane       :math:`R = 1` with ``decay_input``, else :math:`R = 1/(1-\beta)`
IF                      :math:`\dot v = R\,I` stepped as :math:`v \mathrel{+}= \Delta t\,R\,x`,
                        so :math:`R = 1/\Delta t`
threshold, reset        ``v_threshold = threshold``; ``reset="hard"`` resets to ``v_reset``
======================  ========================================================

NIR neurons reset to ``v_reset``; the library's reset by subtraction (and ``"none"``) has no NIR
counterpart (see :func:`snn.nir.export`). NIR fires on :math:`v > \vartheta`, the library on
:math:`v \ge \vartheta`: the two differ only when the membrane lands exactly on the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DISCRETISATIONS",
    "Discretisation",
    "get_discretisation",
    "input_gain",
    "resistance",
]


@dataclass(frozen=True)
class Discretisation:
    """How a continuous time constant becomes a per-step decay.

    Attributes:
        name: registry key.
        description: one line for error messages and documentation.
    """

    name: str
    description: str

    def tau(self, decay: float, dt: float) -> float:
        """Time constant of a per-step decay in ``(0, 1]`` (``inf`` for a decay of 1)."""
        if not 0.0 < decay <= 1.0:
            raise ValueError(
                f"a decay of {decay} has no time constant under {self.name!r}; expected (0, 1]"
            )
        if decay == 1.0:
            return math.inf
        if self.name == "zoh":
            return -dt / math.log(decay)
        return dt / (1.0 - decay)

    def decay(self, tau: np.ndarray, dt: float) -> np.ndarray:
        """Per-step decay of time constants ``tau`` (an array, float64)."""
        tau = np.asarray(tau, dtype=np.float64)
        if np.any(~(tau > 0)):
            raise ValueError(f"time constants must be positive, got minimum {tau.min()}")
        if self.name == "zoh":
            return np.exp(-dt / tau)
        decay = 1.0 - dt / tau
        if np.any(decay < 0):
            raise ValueError(
                f"forward Euler with dt={dt} is unstable for time constants below dt "
                f"(got tau={tau.min()}); use a smaller dt or discretisation='zoh'"
            )
        return decay


DISCRETISATIONS: dict[str, Discretisation] = {
    "zoh": Discretisation("zoh", "exact zero-order hold, beta = exp(-dt/tau)"),
    "euler": Discretisation("euler", "forward Euler, beta = 1 - dt/tau (snnTorch, Norse)"),
}
"""Registered discretisation rules by name."""


def get_discretisation(name: str) -> Discretisation:
    """The discretisation called ``name``.

    Raises:
        ValueError: for an unknown name.
    """
    try:
        return DISCRETISATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown discretisation {name!r}; expected one of {sorted(DISCRETISATIONS)}"
        ) from None


def resistance(decay: float, decay_input: bool) -> float:
    """NIR resistance ``r`` of a leaky membrane with per-step ``decay`` (see module table)."""
    if decay_input:
        return 1.0
    if decay >= 1.0:
        raise ValueError("a non-leaky membrane (decay 1) has no finite resistance")
    return 1.0 / (1.0 - decay)


def input_gain(decay: np.ndarray, r: np.ndarray) -> np.ndarray:
    """What one step adds to the membrane per unit input: :math:`(1-\\beta) R`."""
    return (1.0 - np.asarray(decay, np.float64)) * np.asarray(r, np.float64)
