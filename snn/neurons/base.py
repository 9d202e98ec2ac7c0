"""The stateful module shell shared by every neuron.

A neuron module holds its state between calls and runs in one of two modes:

- ``step_mode="sequence"`` (default): input ``[T, B, ...]``, output ``[T, B, ...]``, the whole
  sequence through the selected backend (:mod:`snn.backends`);
- ``step_mode="single"``: input ``[B, ...]``, one time step per call.

Both modes continue from the state left by the previous call and give identical results.
:func:`snn.reset` clears the state of exactly the neurons inside a model; :func:`snn.detach`
cuts the graph for truncated back-propagation through time.

The state is a plain attribute (not a buffer): it is not part of ``state_dict`` and does not
disturb ``DistributedDataParallel``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from snn.backends import check_backend_name, run_sequence_backend
from snn.functional._common import (
    check_decay,
    check_input,
    check_reset,
    check_sequence,
    check_threshold,
    tau_to_decay,
)
from snn.neurons import recompute
from snn.surrogate import Surrogate, get_surrogate

__all__ = ["STEP_MODES", "BaseNeuron", "SpikingNeuron", "TraceHook", "decay_from"]

STEP_MODES = ("sequence", "single")

TraceHook = Callable[[nn.Module, Tensor], None]
"""``hook(module, v)`` receives the membrane trace ``[T, B, ...]`` of each call (``T = 1`` in
single-step mode)."""


def decay_from(
    name: str, decay: float | None, tau: float | None, dt: float, default: float
) -> float:
    """Per-step decay from either the factor itself or a time constant with ``dt``.

    Raises:
        ValueError: if both are given, or the value is out of range.
    """
    if decay is not None and tau is not None:
        raise ValueError(f"give either {name} or its time constant, not both")
    if tau is not None:
        return tau_to_decay(tau, dt)
    value = default if decay is None else decay
    check_decay(name, value)
    return float(value)


def _detached(state: Any) -> Any:
    """``state`` with every tensor detached, through nested (named) tuples; other values (step
    counters) unchanged."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple):
        items = (_detached(s) for s in state)
        return type(state)(*items) if hasattr(state, "_fields") else type(state)(items)
    return state


class BaseNeuron(nn.Module):
    """Stateful module shell around one functional neuron.

    Subclasses set ``kind`` (the key of the neuron in :mod:`snn.backends`) and implement
    :meth:`neuron_params`, the keyword parameters of the functional step.

    Args:
        step_mode: ``"sequence"`` (input ``[T, B, ...]``) or ``"single"`` (input ``[B, ...]``).
        backend: ``"auto"``, ``"torch"``, or a fused backend (see :data:`snn.backends.BACKENDS`);
            used in sequence mode.
        record: keep the membrane trace of the last call in :attr:`recorded_v`.
    """

    kind: ClassVar[str] = ""
    spiking: ClassVar[bool] = True

    def __init__(self, *, step_mode: str = "sequence", backend: str = "auto", record: bool = False):
        super().__init__()
        if step_mode not in STEP_MODES:
            raise ValueError(f"step_mode must be one of {STEP_MODES}, got {step_mode!r}")
        check_backend_name(backend)
        self.step_mode = step_mode
        self.backend = backend
        self.record = bool(record)
        self.state: Any = None
        self.recorded_v: Tensor | None = None
        self._trace_hooks: OrderedDict[int, TraceHook] = OrderedDict()
        # checkpoint recomputation bookkeeping (snn.neurons.recompute)
        self._start_log: list = []
        self._explicit_state = False
        self._replaying = False

    # -- parameters -----------------------------------------------------------------------
    def neuron_params(self) -> dict[str, Any]:
        """Keyword parameters of the functional step function."""
        raise NotImplementedError(f"{type(self).__name__} must define neuron_params()")

    # -- state ----------------------------------------------------------------------------
    def reset_state(self) -> None:
        """Forget the state; the next call starts from the initial state (zeros)."""
        self.state = None
        self.recorded_v = None
        recompute.clear(self)

    def detach_state(self) -> None:
        """Cut the autograd graph behind the current state (truncated BPTT)."""
        if self.state is not None:
            self.state = _detached(self.state)

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles carry the state detached from the graph and no trace hooks
        (those belong to the monitor that attached them)."""
        d = self.__dict__.copy()
        if self.state is not None:
            d["state"] = _detached(self.state)
        if self.recorded_v is not None:
            d["recorded_v"] = self.recorded_v.detach()
        d["_trace_hooks"] = OrderedDict()
        d["_start_log"] = []
        return d

    def register_trace_hook(self, hook: TraceHook) -> RemovableHandle:
        """Call ``hook(module, v)`` with the membrane trace ``[T, B, ...]`` after each call.

        Used by :class:`snn.layers.Monitor`; returns a handle whose ``remove()`` detaches it.
        """
        handle = RemovableHandle(self._trace_hooks)
        self._trace_hooks[handle.id] = hook
        return handle

    # -- forward --------------------------------------------------------------------------
    def forward(self, x: Tensor, state: Any = None) -> Tensor:
        """Run one step (``[B, ...]``) or a sequence (``[T, B, ...]``) by ``step_mode``.

        Args:
            x: input; its shape follows ``step_mode``.
            state: optional initial state replacing the kept one (a state tuple of the neuron's
                functional core, e.g. :class:`snn.functional.LIFState`).

        Returns:
            spikes (the membrane for non-spiking neurons), same shape as ``x``.
        """
        if state is not None:
            self.state = state
        # Records the start state for checkpoint recomputation, or replays from it.
        return recompute.call(self, x, self._run)

    def _run(self, x: Tensor) -> Tensor:
        if self.step_mode == "single":
            return self._single(x)
        return self._sequence(x)

    def _want_trace(self) -> bool:
        return self.record or bool(self._trace_hooks)

    def _emit_trace(self, v: Tensor) -> None:
        if recompute.replaying(self):
            return
        if self.record:
            self.recorded_v = v
        for hook in tuple(self._trace_hooks.values()):
            hook(self, v)

    def _sequence(self, x: Tensor) -> Tensor:
        check_sequence(x)
        want = self._want_trace()
        out = run_sequence_backend(
            self.kind, self.backend, x, self.state, want, self.neuron_params()
        )
        self.state = out.state
        if want:
            self._emit_trace(out.v)
        return out.spikes

    def _single(self, x: Tensor) -> Tensor:
        check_input(x)
        out = run_sequence_backend(
            self.kind,
            "torch",
            x.unsqueeze(0),
            self.state,
            self._want_trace(),
            self.neuron_params(),
        )
        self.state = out.state
        if out.v is not None:
            self._emit_trace(out.v)
        return out.spikes[0]

    def extra_repr(self) -> str:
        parts = []
        for key, value in self.neuron_params().items():
            if isinstance(value, Tensor):
                value = f"tensor{tuple(value.shape)}" if value.dim() else f"{value.item():.4g}"
            elif isinstance(value, float):
                value = f"{value:.4g}"
            parts.append(f"{key}={value}")
        if self.step_mode != "sequence":
            parts.append(f"step_mode={self.step_mode!r}")
        if self.backend != "auto":
            parts.append(f"backend={self.backend!r}")
        return ", ".join(parts)


class SpikingNeuron(BaseNeuron):
    """A neuron that fires: threshold, reset and surrogate handling on top of
    :class:`BaseNeuron`.

    Args:
        threshold: firing threshold (positive).
        reset: ``"subtract"`` (soft), ``"hard"`` (to ``v_reset``) or ``"none"``.
        v_reset: membrane value after a hard reset.
        surrogate: surrogate gradient, a name from :data:`snn.surrogate.SURROGATES` or an
            instance; each neuron gets its own immutable instance.
        detach_reset: stop the gradient through the reset term.
        learn_threshold: make the threshold a trainable parameter.
        **kwargs: ``step_mode``, ``backend``, ``record`` (see :class:`BaseNeuron`).
    """

    def __init__(
        self,
        *,
        threshold: float = 1.0,
        reset: str = "subtract",
        v_reset: float = 0.0,
        surrogate: str | Surrogate | None = None,
        detach_reset: bool = False,
        learn_threshold: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        check_threshold(threshold)
        check_reset(reset)
        if not math.isfinite(v_reset):
            raise ValueError(f"v_reset must be finite, got {v_reset}")
        self.reset = reset
        self.v_reset = float(v_reset)
        self.surrogate = get_surrogate(surrogate)
        self.detach_reset = bool(detach_reset)
        if learn_threshold:
            self.threshold: float | Tensor = nn.Parameter(torch.tensor(float(threshold)))
        else:
            self.threshold = float(threshold)

    def spike_params(self) -> dict[str, Any]:
        """The threshold/reset/surrogate part of :meth:`neuron_params`."""
        return {
            "threshold": self.threshold,
            "reset": self.reset,
            "v_reset": self.v_reset,
            "surrogate": self.surrogate,
            "detach_reset": self.detach_reset,
        }
