"""Integrate-and-fire, leaky integrate-and-fire and leaky integrator neurons.

All functions are pure: they take the state and return the new one. A step takes one time step
``[B, ...]``; a ``*_sequence`` function takes a time-first sequence ``[T, B, ...]``.
"""

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
from snn.fused.description import KIND_LI, NeuronDescription, describe
from snn.surrogate import Surrogate, get_surrogate

__all__ = [
    "LIFState",
    "if_sequence",
    "if_step",
    "li_sequence",
    "li_step",
    "lif_sequence",
    "lif_step",
]


class LIFState(NamedTuple):
    """State of IF, LIF, parametric LIF and LI neurons.

    Attributes:
        v: membrane potential ``[B, ...]`` after the last step's reset.
    """

    v: Tensor


def if_step(
    x: Tensor,
    state: LIFState | None = None,
    *,
    threshold: float | Tensor = 1.0,
    reset: str = "subtract",
    v_reset: float = 0.0,
    surrogate: str | Surrogate | None = None,
    detach_reset: bool = False,
) -> tuple[Tensor, LIFState]:
    r"""One step of the integrate-and-fire neuron.

    .. math::
        h_t = v_{t-1} + x_t, \qquad s_t = \Theta(h_t - \vartheta), \qquad
        v_t = \operatorname{reset}(h_t, s_t)

    with the reset of :func:`snn.functional.spike_and_reset`.

    Args:
        x: input current of one step, ``[B, ...]``.
        state: previous state; ``None`` starts from :math:`v = 0`.
        threshold: firing threshold :math:`\vartheta` (float or broadcastable tensor).
        reset: ``"subtract"``, ``"hard"`` (to ``v_reset``) or ``"none"``.
        v_reset: membrane value after a hard reset.
        surrogate: surrogate gradient (name or instance; default ``"atan"``).
        detach_reset: stop the gradient through the reset term.

    Returns:
        ``(spikes, new_state)``, spikes in ``x``'s dtype.
    """
    check_threshold(threshold)
    check_reset(reset)
    (v,) = initial_state(LIFState, x, state)
    s, v = spike_and_reset(
        v + x,
        threshold,
        reset=reset,
        v_reset=v_reset,
        surrogate=get_surrogate(surrogate),
        detach_reset=detach_reset,
    )
    return s, LIFState(v)


def lif_step(
    x: Tensor,
    state: LIFState | None = None,
    *,
    beta: Decay,
    threshold: float | Tensor = 1.0,
    reset: str = "subtract",
    v_reset: float = 0.0,
    decay_input: bool = False,
    surrogate: str | Surrogate | None = None,
    detach_reset: bool = False,
) -> tuple[Tensor, LIFState]:
    r"""One step of the leaky integrate-and-fire neuron.

    .. math::
        h_t = \beta\, v_{t-1} + \begin{cases} (1-\beta)\, x_t & \text{decay\_input} \\
                                             x_t & \text{otherwise} \end{cases}, \qquad
        s_t = \Theta(h_t - \vartheta), \qquad v_t = \operatorname{reset}(h_t, s_t)

    The per-step decay :math:`\beta` relates to the membrane time constant by
    :math:`\beta = e^{-\Delta t/\tau}` (:func:`snn.functional.tau_to_decay`). With
    ``decay_input=True`` this is the exact zero-order-hold solution of
    :math:`\tau \dot v = -v + x`; without it, of :math:`\tau \dot v = -v + R x` with
    :math:`R = 1/(1-\beta)`. A tensor ``beta`` (broadcastable to ``x``) makes the neuron
    parametric (learnable decay, per neuron or per channel).

    Args:
        x: input of one step, ``[B, ...]``.
        state: previous state; ``None`` starts from :math:`v = 0`.
        beta: membrane decay factor per step, in ``[0, 1]``.
        threshold: firing threshold.
        reset: ``"subtract"``, ``"hard"`` or ``"none"``.
        v_reset: membrane value after a hard reset.
        decay_input: scale the input by :math:`1-\beta`.
        surrogate: surrogate gradient (name or instance; default ``"atan"``).
        detach_reset: stop the gradient through the reset term.

    Returns:
        ``(spikes, new_state)``.
    """
    check_decay("beta", beta)
    check_threshold(threshold)
    check_reset(reset)
    (v,) = initial_state(LIFState, x, state)
    h = beta * v + ((1 - beta) * x if decay_input else x)
    s, v = spike_and_reset(
        h,
        threshold,
        reset=reset,
        v_reset=v_reset,
        surrogate=get_surrogate(surrogate),
        detach_reset=detach_reset,
    )
    return s, LIFState(v)


def li_step(
    x: Tensor,
    state: LIFState | None = None,
    *,
    beta: Decay,
    decay_input: bool = False,
) -> tuple[Tensor, LIFState]:
    r"""One step of the non-spiking leaky integrator (a readout layer).

    .. math::
        v_t = \beta\, v_{t-1} + \begin{cases} (1-\beta)\, x_t & \text{decay\_input} \\
                                             x_t & \text{otherwise} \end{cases}

    Returns:
        ``(v, new_state)``: the output is the membrane potential itself.
    """
    check_decay("beta", beta)
    (v,) = initial_state(LIFState, x, state)
    v = beta * v + ((1 - beta) * x if decay_input else x)
    return v, LIFState(v)


if_sequence = sequence_function(if_step)
lif_sequence = sequence_function(lif_step)
li_sequence = sequence_function(li_step)


IF = describe(NeuronDescription("if", if_step, LIFState, unit_decay=True))
LIF = describe(NeuronDescription("lif", lif_step, LIFState, test_params={"beta": 0.85}))
LI = describe(NeuronDescription("li", li_step, LIFState, integration=KIND_LI,
                                test_params={"beta": 0.8}))
