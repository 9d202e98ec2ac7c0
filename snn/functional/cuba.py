"""Current-based (CuBa) leaky integrate-and-fire neuron."""

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
from snn.fused.description import KIND_CUBA, NeuronDescription, describe
from snn.surrogate import Surrogate, get_surrogate

__all__ = ["CubaLIFState", "cuba_lif_sequence", "cuba_lif_step"]


class CubaLIFState(NamedTuple):
    """State of the current-based LIF neuron.

    Attributes:
        i: synaptic current ``[B, ...]``.
        v: membrane potential ``[B, ...]`` after the last step's reset.
    """

    i: Tensor
    v: Tensor


def cuba_lif_step(
    x: Tensor,
    state: CubaLIFState | None = None,
    *,
    alpha: Decay,
    beta: Decay,
    threshold: float | Tensor = 1.0,
    reset: str = "subtract",
    v_reset: float = 0.0,
    decay_input: bool = False,
    surrogate: str | Surrogate | None = None,
    detach_reset: bool = False,
) -> tuple[Tensor, CubaLIFState]:
    r"""One step of the current-based LIF neuron: a synaptic current with its own decay
    feeds the membrane.

    .. math::
        i_t = \alpha\, i_{t-1} + x_t, \qquad
        h_t = \beta\, v_{t-1} + \begin{cases} (1-\beta)\, i_t & \text{decay\_input} \\
                                             i_t & \text{otherwise} \end{cases}, \qquad
        s_t = \Theta(h_t - \vartheta), \qquad v_t = \operatorname{reset}(h_t, s_t)

    Time constants: :math:`\alpha = e^{-\Delta t/\tau_\text{syn}}`,
    :math:`\beta = e^{-\Delta t/\tau_\text{mem}}`. The current equation is the exact
    zero-order-hold solution of :math:`\tau_\text{syn}\dot i = -i + w_\text{in} x` with
    :math:`w_\text{in} = 1/(1-\alpha)`; the membrane sees the current of the same step
    (:math:`R = 1` with ``decay_input``, :math:`R = 1/(1-\beta)` without).

    Args:
        x: input of one step, ``[B, ...]``.
        state: previous state; ``None`` starts from :math:`i = v = 0`.
        alpha: synaptic-current decay per step, in ``[0, 1]``.
        beta: membrane decay per step, in ``[0, 1]``.
        threshold: firing threshold.
        reset: ``"subtract"``, ``"hard"`` or ``"none"``.
        v_reset: membrane value after a hard reset.
        decay_input: scale the current entering the membrane by :math:`1-\beta`.
        surrogate: surrogate gradient (name or instance; default ``"atan"``).
        detach_reset: stop the gradient through the reset term.

    Returns:
        ``(spikes, new_state)``.
    """
    check_decay("alpha", alpha)
    check_decay("beta", beta)
    check_threshold(threshold)
    check_reset(reset)
    i, v = initial_state(CubaLIFState, x, state)
    i = alpha * i + x
    h = beta * v + ((1 - beta) * i if decay_input else i)
    s, v = spike_and_reset(
        h,
        threshold,
        reset=reset,
        v_reset=v_reset,
        surrogate=get_surrogate(surrogate),
        detach_reset=detach_reset,
    )
    return s, CubaLIFState(i, v)


cuba_lif_sequence = sequence_function(cuba_lif_step)


CUBA_LIF = describe(NeuronDescription("cuba_lif", cuba_lif_step, CubaLIFState,
                                      integration=KIND_CUBA,
                                      test_params={"alpha": 0.7, "beta": 0.85}))
