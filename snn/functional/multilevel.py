"""Neurons with non-binary spikes: the integer (multi-level) LIF and the ternary LIF.

- :func:`ilif_step`: the I-LIF of SpikeYOLO (Luo et al., ECCV 2024), integer spikes
  :math:`0..D` in training, equal to :math:`D` binary sub-steps at inference
  (:func:`multilevel_to_binary`);
- :func:`ternary_lif_step`: signed spikes :math:`-1, 0, +1` (Guo et al., AAAI 2024).

A step takes one time step ``[B, ...]``; a ``*_sequence`` function takes a time-first
sequence ``[T, B, ...]``. Both neurons are described once (:mod:`snn.fused.description`), so
the fused CPU and CUDA kernels run them too.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from snn.functional._common import (
    Decay,
    check_decay,
    check_reset,
    check_threshold,
    initial_state,
    sequence_function,
)
from snn.functional.lif import LIFState
from snn.fused.description import (
    FIRE_MULTILEVEL,
    FIRE_TERNARY,
    NeuronDescription,
    describe,
)
from snn.surrogate import Surrogate, get_surrogate

__all__ = [
    "ilif_sequence",
    "ilif_step",
    "multilevel_spike",
    "multilevel_to_binary",
    "ternary_lif_sequence",
    "ternary_lif_step",
]


class _MultiLevelSpike(torch.autograd.Function):
    @staticmethod
    def forward(q: Tensor, levels: float) -> Tensor:
        return torch.round(torch.clamp(q, 0.0, levels))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, float], output: Tensor) -> None:
        q, levels = inputs
        ctx.save_for_backward(q)
        ctx.levels = levels

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (q,) = ctx.saved_tensors
        window = (q >= 0) & (q <= ctx.levels)
        return torch.where(window, grad, torch.zeros_like(grad)), None

    @staticmethod
    def vmap(info: Any, in_dims: tuple[Any, Any], q: Tensor, levels: float
             ) -> tuple[Tensor, Any]:
        return _MultiLevelSpike.apply(q, levels), in_dims[0]


def multilevel_spike(q: Tensor, levels: int) -> Tensor:
    r"""Integer spikes :math:`\operatorname{round}(\operatorname{clip}(q, 0, D))` with the
    rectangular straight-through gradient of Luo et al. (2024): :math:`\partial s/\partial q
    = 1` for :math:`0 \le q \le D`, else 0. Rounding is to the nearest integer, ties to even
    (``torch.round``).
    """
    return _MultiLevelSpike.apply(q, float(levels))


def _check_levels(levels: int) -> None:
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels (the largest integer spike D) must be an int >= 1, got "
                         f"{levels!r}")


def ilif_step(
    x: Tensor,
    state: LIFState | None = None,
    *,
    beta: Decay = 0.25,
    levels: int = 4,
    threshold: float | Tensor = 1.0,
    reset: str = "subtract",
    decay_input: bool = False,
    detach_reset: bool = False,
) -> tuple[Tensor, LIFState]:
    r"""One step of the integer LIF (I-LIF) of SpikeYOLO.

    Luo, Yao, Chou, Xu, Li, "Integer-Valued Training and Spike-Driven Inference Spiking Neural
    Network for High-performance and Energy-efficient Object Detection", ECCV 2024
    (arXiv:2407.20708):

    .. math::
        h_t = \beta\, v_{t-1} + x_t, \qquad
        s_t = \operatorname{round}\!\left(\operatorname{clip}\!\left(\frac{h_t}{\vartheta},
              0, D\right)\right) \in \{0, 1, \dots, D\}, \qquad
        v_t = h_t - \vartheta\, s_t

    Training uses the integer spikes with the paper's rectangular straight-through gradient
    (:func:`multilevel_spike`); at inference an integer spike is :math:`D` binary sub-steps
    (:func:`multilevel_to_binary`), so the next layer only accumulates. Readings taken where
    the paper is terse: the paper's unit threshold is generalised to :math:`\vartheta`
    (spikes count multiples of :math:`\vartheta`, the straight-through window is
    :math:`0 \le h/\vartheta \le D`); the default decay :math:`\beta = 0.25` is the one of the
    authors' code; ``reset="none"`` is allowed for ablations, a hard reset is not (it has no
    meaning for a count).

    Args:
        x: input of one step, ``[B, ...]``.
        state: previous state; ``None`` starts from :math:`v = 0`.
        beta: membrane decay per step, in ``[0, 1]``.
        levels: the largest integer spike :math:`D` (``>= 1``; 1 gives a binary LIF with a
            threshold of :math:`\vartheta/2`).
        threshold: the membrane value of one spike, :math:`\vartheta > 0`.
        reset: ``"subtract"`` (the paper) or ``"none"``.
        decay_input: scale the input by :math:`1-\beta`.
        detach_reset: stop the gradient through the reset term.

    Returns:
        ``(spikes, new_state)``: integer-valued spikes in ``x``'s dtype.
    """
    check_decay("beta", beta)
    _check_levels(levels)
    check_threshold(threshold)
    check_reset(reset)
    if reset == "hard":
        raise ValueError("ilif: reset must be 'subtract' or 'none' (a hard reset does not "
                         "apply to integer spikes)")
    (v,) = initial_state(LIFState, x, state)
    h = beta * v + ((1 - beta) * x if decay_input else x)
    s = multilevel_spike(h / threshold, levels)
    if reset == "none":
        return s, LIFState(h)
    s_r = s.detach() if detach_reset else s
    return s, LIFState(h - s_r * threshold)


def multilevel_to_binary(spikes: Tensor, levels: int) -> Tensor:
    r"""The binary sub-steps of integer spikes, for spike-driven inference.

    Each integer spike :math:`s_t \in \{0..D\}` becomes :math:`D` binary slots
    :math:`b_{t,1..D}` with :math:`b_{t,d} = [d \le s_t]`, so :math:`\sum_d b_{t,d} = s_t` and
    a following linear layer gives :math:`W s_t = \sum_d W b_{t,d}`: every slot costs
    accumulates only (Luo et al. 2024, Sec. 3). A bias must then be added once per step, not
    per slot.

    Args:
        spikes: integer spikes ``[T, B, ...]``.
        levels: :math:`D`.

    Returns:
        binary spikes ``[T * D, B, ...]`` (the slots of step ``t`` at ``t*D .. t*D + D - 1``).

    Raises:
        ValueError: for spikes outside ``0..levels`` or not integers.
    """
    _check_levels(levels)
    if spikes.dim() < 1:
        raise ValueError("spikes must be a time-first sequence [T, B, ...]")
    if bool(((spikes < 0) | (spikes > levels) | (spikes != spikes.round())).any()):
        raise ValueError(f"spikes must be integers in 0..{levels}")
    slots = torch.arange(1, levels + 1, dtype=spikes.dtype, device=spikes.device)
    slots = slots.reshape(1, levels, *([1] * (spikes.dim() - 1)))
    binary = (slots <= spikes.unsqueeze(1)).to(spikes.dtype)
    return binary.reshape(spikes.shape[0] * levels, *spikes.shape[1:])


def ternary_lif_step(
    x: Tensor,
    state: LIFState | None = None,
    *,
    beta: Decay = 0.5,
    threshold: float | Tensor = 1.0,
    reset: str = "subtract",
    v_reset: float = 0.0,
    decay_input: bool = False,
    surrogate: str | Surrogate | None = None,
    detach_reset: bool = False,
) -> tuple[Tensor, LIFState]:
    r"""One step of the ternary (signed) LIF neuron.

    Guo, Chen, Liu, Peng, Zhang, Huang, Ma, "Ternary Spike: Learning Ternary Spikes for
    Spiking Neural Networks", AAAI 2024 (arXiv:2312.06372):

    .. math::
        h_t = \beta\, v_{t-1} + x_t, \qquad
        s_t = \Theta(h_t - \vartheta) - \Theta(-h_t - \vartheta) \in \{-1, 0, 1\}

    with the reset ``subtract`` :math:`v_t = h_t - \vartheta s_t` (a negative spike adds
    :math:`\vartheta`), ``hard`` :math:`v_t = h_t - |s_t| (h_t - v_\text{reset})` or ``none``.
    Each threshold crossing gets the surrogate gradient. Readings taken: the paper's learnable
    spike amplitude (folded into the next layer's weights at inference) is left to that
    layer, so spikes here are exactly :math:`\{-1, 0, 1\}`; both thresholds include equality
    (:math:`\Theta(0) = 1`).

    Args:
        x: input of one step, ``[B, ...]``.
        state: previous state; ``None`` starts from :math:`v = 0`.
        beta: membrane decay per step, in ``[0, 1]``.
        threshold: the (symmetric) threshold :math:`\vartheta > 0`.
        reset: ``"subtract"``, ``"hard"`` or ``"none"``.
        v_reset: membrane value after a hard reset.
        decay_input: scale the input by :math:`1-\beta`.
        surrogate: surrogate gradient (name or instance; default ``"atan"``).
        detach_reset: stop the gradient through the reset term.

    Returns:
        ``(spikes, new_state)``: spikes in ``{-1, 0, 1}``, in ``x``'s dtype.
    """
    check_decay("beta", beta)
    check_threshold(threshold)
    check_reset(reset)
    sg = get_surrogate(surrogate)
    (v,) = initial_state(LIFState, x, state)
    h = beta * v + ((1 - beta) * x if decay_input else x)
    pos = sg(h - threshold)
    neg = sg(-h - threshold)
    s = pos - neg
    if reset == "none":
        return s, LIFState(h)
    if reset == "subtract":
        s_r = s.detach() if detach_reset else s
        return s, LIFState(h - s_r * threshold)
    r = pos + neg
    r = r.detach() if detach_reset else r
    return s, LIFState(h - r * (h - v_reset))


ilif_sequence = sequence_function(ilif_step)
ternary_lif_sequence = sequence_function(ternary_lif_step)

ILIF = describe(NeuronDescription(
    "ilif", ilif_step, LIFState, fire=FIRE_MULTILEVEL, resets=("subtract", "none"),
    uses_surrogate=False, test_params={"beta": 0.5, "levels": 4, "threshold": 0.3}))
TERNARY_LIF = describe(NeuronDescription(
    "ternary_lif", ternary_lif_step, LIFState, fire=FIRE_TERNARY,
    test_params={"beta": 0.85, "threshold": 0.5}))
