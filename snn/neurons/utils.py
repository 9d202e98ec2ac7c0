"""Operations over every neuron inside a model."""

from __future__ import annotations

from torch import nn

from snn.backends import check_backend_name
from snn.neurons.base import STEP_MODES, BaseNeuron

__all__ = ["detach", "neurons_of", "reset", "set_backend", "set_step_mode"]


def neurons_of(model: nn.Module) -> list[tuple[str, BaseNeuron]]:
    """``(qualified_name, module)`` of every neuron inside ``model`` (itself included)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return [(name, m) for name, m in model.named_modules() if isinstance(m, BaseNeuron)]


def reset(model: nn.Module) -> nn.Module:
    """Reset the state of every neuron inside ``model`` and nothing else; returns ``model``."""
    for _, m in neurons_of(model):
        m.reset_state()
    return model


def detach(model: nn.Module) -> nn.Module:
    """Detach the state of every neuron inside ``model`` from the autograd graph (truncated
    back-propagation through time); returns ``model``."""
    for _, m in neurons_of(model):
        m.detach_state()
    return model


def set_step_mode(model: nn.Module, step_mode: str) -> nn.Module:
    """Switch every neuron inside ``model`` to ``"single"`` or ``"sequence"`` mode and reset
    their state; returns ``model``."""
    if step_mode not in STEP_MODES:
        raise ValueError(f"step_mode must be one of {STEP_MODES}, got {step_mode!r}")
    for _, m in neurons_of(model):
        m.step_mode = step_mode
        m.reset_state()
    return model


def set_backend(model: nn.Module, backend: str) -> nn.Module:
    """Use ``backend`` for every neuron inside ``model``; returns ``model``."""
    check_backend_name(backend)
    for _, m in neurons_of(model):
        m.backend = backend
    return model
