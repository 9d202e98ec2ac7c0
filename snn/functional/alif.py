"""Adaptive leaky integrate-and-fire neuron (threshold adaptation)."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from snn.functional._common import (
    Decay,
    check_decay,
    check_reset,
    check_threshold,
    initial_state,
    sequence_function,
    spike_and_reset,
)
from snn.fused.description import KIND_ALIF, NeuronDescription, describe
from snn.surrogate import Surrogate, get_surrogate

__all__ = ["ALIFState", "alif_sequence", "alif_step"]


class ALIFState(NamedTuple):
    """State of the adaptive LIF neuron.

    Attributes:
        v: membrane potential ``[B, ...]`` after the last step's reset.
        a: threshold adaptation variable ``[B, ...]``.
    """

    v: Tensor
    a: Tensor


def alif_step(
    x: Tensor,
    state: ALIFState | None = None,
    *,
    beta: Decay,
    beta_adapt: Decay,
    adapt_scale: float | Tensor = 1.8,
    threshold: float | Tensor = 1.0,
    reset: str = "subtract",
    v_reset: float = 0.0,
    decay_input: bool = False,
    surrogate: str | Surrogate | None = None,
    detach_reset: bool = False,
) -> tuple[Tensor, ALIFState]:
    r"""One step of the adaptive LIF neuron (Bellec et al. 2018): every spike raises the
    threshold, which relaxes back with its own decay.

    .. math::
        h_t &= \beta\, v_{t-1} + \begin{cases} (1-\beta)\, x_t & \text{decay\_input} \\
                                              x_t & \text{otherwise} \end{cases} \\
        \vartheta_t &= \vartheta + \gamma\, a_{t-1}, \qquad
        s_t = \Theta(h_t - \vartheta_t), \qquad v_t = \operatorname{reset}(h_t, s_t;
        \vartheta_t) \\
        a_t &= \rho\, a_{t-1} + (1-\rho)\, s_t

    with :math:`\rho` = ``beta_adapt`` (:math:`e^{-\Delta t/\tau_\text{adapt}}`) and
    :math:`\gamma` = ``adapt_scale``. Reset by subtraction removes the adapted threshold
    :math:`\vartheta_t`.

    Args:
        x: input of one step, ``[B, ...]``.
        state: previous state; ``None`` starts from :math:`v = a = 0`.
        beta: membrane decay per step, in ``[0, 1]``.
        beta_adapt: adaptation decay per step, in ``[0, 1]``.
        adapt_scale: threshold increase per unit of adaptation, :math:`\gamma \ge 0`.
        threshold: baseline threshold :math:`\vartheta`.
        reset: ``"subtract"``, ``"hard"`` or ``"none"``.
        v_reset: membrane value after a hard reset.
        decay_input: scale the input by :math:`1-\beta`.
        surrogate: surrogate gradient (name or instance; default ``"atan"``).
        detach_reset: stop the gradient through the reset term.

    Returns:
        ``(spikes, new_state)``.
    """
    check_decay("beta", beta)
    check_decay("beta_adapt", beta_adapt)
    check_threshold(threshold)
    check_reset(reset)
    if not isinstance(adapt_scale, Tensor) and adapt_scale < 0:
        raise ValueError(f"adapt_scale must be >= 0, got {adapt_scale}")
    v, a = initial_state(ALIFState, x, state)
    h = beta * v + ((1 - beta) * x if decay_input else x)
    theta = threshold + adapt_scale * a
    s, v = spike_and_reset(
        h,
        theta,
        reset=reset,
        v_reset=v_reset,
        surrogate=get_surrogate(surrogate),
        detach_reset=detach_reset,
    )
    a = beta_adapt * a + (1 - beta_adapt) * s
    return s, ALIFState(v, a)


alif_sequence = sequence_function(alif_step)


ALIF = describe(NeuronDescription(
    "alif", alif_step, ALIFState, integration=KIND_ALIF,
    test_params={"beta": 0.85, "beta_adapt": 0.9, "adapt_scale": 0.5}))
