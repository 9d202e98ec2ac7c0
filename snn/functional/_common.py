"""Shared pieces of the functional core: validation, spike-and-reset, the generic time loop."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from snn.surrogate import Surrogate

__all__ = [
    "RESET_MODES",
    "SequenceOutput",
    "check_decay",
    "check_input",
    "check_reset",
    "check_sequence",
    "check_state_tensor",
    "check_threshold",
    "decay_to_tau",
    "initial_state",
    "run_sequence",
    "sequence_function",
    "spike_and_reset",
    "tau_to_decay",
]

RESET_MODES = ("subtract", "hard", "none")
"""``subtract``: :math:`v \\leftarrow h - \\vartheta s` (soft reset); ``hard``:
:math:`v \\leftarrow h(1-s) + v_\\text{reset}\\,s`; ``none``: no reset."""

Decay = float | Tensor


class SequenceOutput(NamedTuple):
    """Result of a whole-sequence function.

    Attributes:
        spikes: ``[T, B, ...]`` output of every step (the membrane for non-spiking neurons).
        state: the state after the last step.
        v: ``[T, B, ...]`` membrane potential after each step's reset when ``record=True``,
            else ``None``.
    """

    spikes: Tensor
    state: Any
    v: Tensor | None


def tau_to_decay(tau: float, dt: float = 1.0) -> float:
    """Per-step decay factor of a continuous time constant: :math:`\\beta = e^{-dt/\\tau}`.

    This is the exact zero-order-hold discretisation of :math:`\\tau\\dot v = -v`.

    Raises:
        ValueError: if ``tau`` or ``dt`` is not positive.
    """
    if not (tau > 0 and math.isfinite(tau)):
        raise ValueError(f"tau must be positive and finite, got {tau}")
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt must be positive and finite, got {dt}")
    return math.exp(-dt / tau)


def decay_to_tau(decay: float, dt: float = 1.0) -> float:
    """Inverse of :func:`tau_to_decay`: :math:`\\tau = -dt / \\ln\\beta`.

    A decay of 1 (no leak) maps to ``inf``.

    Raises:
        ValueError: if ``decay`` is not in ``(0, 1]``.
    """
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1] to have a time constant, got {decay}")
    return math.inf if decay == 1 else -dt / math.log(decay)


def check_decay(name: str, value: Decay) -> None:
    """Raise ``ValueError`` unless the decay factor ``value`` lies in ``[0, 1]``.

    Tensors are checked when they live on the CPU (a GPU check would synchronise every step).
    """
    if isinstance(value, Tensor):
        if value.device.type == "cpu" and not torch.compiler.is_compiling():
            bad = (value < 0) | (value > 1) | torch.isnan(value)
            if bool(bad.any()):
                raise ValueError(
                    f"{name} must lie in [0, 1] (a per-step decay factor), got values in "
                    f"[{float(value.min())}, {float(value.max())}]"
                )
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float or a tensor, got {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1] (a per-step decay factor), got {value}")


def check_threshold(threshold: float | Tensor) -> None:
    """Raise unless a float threshold is positive and finite (tensors are not synchronised)."""
    if isinstance(threshold, Tensor):
        return
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"threshold must be a float or a tensor, got {type(threshold).__name__}")
    if not (threshold > 0 and math.isfinite(threshold)):
        raise ValueError(f"threshold must be positive and finite, got {threshold}")


def check_reset(reset: str) -> None:
    """Raise ``ValueError`` for a reset mode not in :data:`RESET_MODES`."""
    if reset not in RESET_MODES:
        raise ValueError(f"reset must be one of {RESET_MODES}, got {reset!r}")


def check_input(x: Tensor, what: str = "input") -> None:
    """Raise ``TypeError`` unless ``x`` is a floating-point tensor of rank >= 1."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < 1:
        raise ValueError(f"{what} must have a batch dimension [B, ...], got a scalar")


def check_sequence(x: Tensor) -> None:
    """Raise unless ``x`` is a floating-point time-first sequence ``[T, B, ...]``."""
    check_input(x, "input sequence")
    if x.dim() < 2:
        raise ValueError(
            f"input sequence must be time-first [T, B, ...] with at least 2 dimensions, got "
            f"shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError("input sequence has T = 0 time steps")


def check_state_tensor(name: str, state: Tensor, x: Tensor) -> Tensor:
    """Check a state tensor against one step's input; return it in the input's dtype.

    Raises:
        TypeError: if the state is not a tensor.
        ValueError: if its shape differs from the input's.
    """
    if not isinstance(state, Tensor):
        raise TypeError(f"state.{name} must be a tensor, got {type(state).__name__}")
    if state.shape != x.shape:
        raise ValueError(
            f"state.{name} has shape {tuple(state.shape)} but one step of input has shape "
            f"{tuple(x.shape)}; reset the state (snn.reset) when the batch or feature shape "
            "changes"
        )
    return state if state.dtype == x.dtype else state.to(x.dtype)


def initial_state(cls: type[Any], x: Tensor, state: Any) -> Any:
    """The state a step starts from: zeros shaped like ``x`` when ``state`` is ``None``, else
    ``state`` with every field checked against ``x`` (shape) and cast to its dtype.

    Args:
        cls: the neuron's state ``NamedTuple`` class; its fields name the state tensors.
        x: one step of input ``[B, ...]`` (checked to be a floating-point tensor).
        state: the previous state or ``None``.
    """
    check_input(x)
    if state is None:
        return cls(*(torch.zeros_like(x) for _ in cls._fields))
    return cls(*(check_state_tensor(f, getattr(state, f), x) for f in cls._fields))


def spike_and_reset(
    h: Tensor,
    threshold: float | Tensor,
    *,
    reset: str,
    v_reset: float,
    surrogate: Surrogate,
    detach_reset: bool,
) -> tuple[Tensor, Tensor]:
    """Fire and reset, shared by every spiking neuron.

    .. math::
        s = \\Theta(h - \\vartheta), \\qquad
        v = \\begin{cases} h - \\vartheta\\,\\bar s & \\text{subtract} \\\\
                           h\\,(1-\\bar s) + v_\\text{reset}\\,\\bar s & \\text{hard} \\\\
                           h & \\text{none} \\end{cases}

    where :math:`\\bar s` is ``s`` with its gradient stopped when ``detach_reset`` is set.

    Returns:
        ``(spikes, v)``.
    """
    s = surrogate(h - threshold)
    if reset == "none":
        return s, h
    s_r = s.detach() if detach_reset else s
    if reset == "subtract":
        return s, h - s_r * threshold
    return s, h - s_r * (h - v_reset)


StepFn = Callable[..., tuple[Tensor, Any]]


def run_sequence(
    step: StepFn,
    x: Tensor,
    state: Any,
    record: bool,
    params: dict[str, Any],
) -> SequenceOutput:
    """Apply ``step`` over the leading time dimension of ``x`` (``[T, B, ...]``).

    This is the reference time loop every fused backend is compared with.
    """
    check_sequence(x)
    outputs: list[Tensor] = []
    vs: list[Tensor] = []
    # unbind: one backward node for all steps (indexing x[t] would scatter every step's
    # gradient into a fresh zero tensor of the whole input, O(T^2) in backward)
    for x_t in x.unbind(0):
        out, state = step(x_t, state, **params)
        outputs.append(out)
        if record:
            vs.append(state.v)
    return SequenceOutput(torch.stack(outputs), state, torch.stack(vs) if record else None)


def sequence_function(step: StepFn) -> Callable[..., SequenceOutput]:
    """Build the whole-sequence function of a neuron from its step function.

    The result has the signature ``fn(x, state=None, *, record=False, **params)``: ``x`` is a
    time-first sequence ``[T, B, ...]``, ``state`` the initial state (``None``: zeros),
    ``record`` also returns the membrane trace, and ``params`` are the step's keyword
    parameters.
    """
    name = step.__name__.removesuffix("_step") + "_sequence"

    def sequence(
        x: Tensor, state: Any = None, *, record: bool = False, **params: Any
    ) -> SequenceOutput:
        return run_sequence(step, x, state, record, params)

    sequence.__name__ = sequence.__qualname__ = name
    sequence.__module__ = step.__module__
    sequence.__doc__ = (
        f":func:`{step.__name__}` over a time-first sequence ``x`` of shape ``[T, B, ...]``.\n\n"
        "Args:\n"
        "    x: input sequence ``[T, B, ...]``.\n"
        "    state: initial state (``None``: zeros).\n"
        "    record: also return the membrane trace ``[T, B, ...]`` as ``.v``.\n"
        f"    **params: keyword parameters of :func:`{step.__name__}`.\n\n"
        "Returns:\n"
        "    :class:`SequenceOutput` ``(spikes, state, v)``.\n"
    )
    return sequence
