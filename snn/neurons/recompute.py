"""Neuron state under activation checkpointing.

Checkpointing (``torch.utils.checkpoint`` in either mode, or :func:`snn.checkpoint`) runs a
forward pass a second time inside the backward pass to rebuild the tensors it did not keep. A
neuron's state lives outside the autograd graph, so a naive recomputation starts from the state
the *end* of the forward left behind and rebuilds different tensors: gradients come out wrong
without any error.

This module keeps that recomputation honest:

- every call that may later be recomputed (a call under ``torch.no_grad`` in training mode,
  as reentrant checkpointing makes, or under saved-tensor hooks, as non-reentrant
  checkpointing installs) records the state it started from, keyed by a fingerprint of its
  input (the sum of each leading-axis slice, in float64) and its shape;
- a call made inside a backward pass with gradients enabled is a recomputation: it looks its
  input up, starts from the recorded state, and leaves the neuron's state, recorded trace and
  trace hooks untouched afterwards (a recomputation has no side effects);
- where the right state cannot be known, it raises :class:`CheckpointStateError` rather than
  compute wrong gradients: no recorded call matches the input (e.g. :func:`snn.reset` ran
  between the forward and the backward pass), several recorded calls with different start
  states match it, or reentrant checkpointing (``use_reentrant=True``) would have to carry a
  gradient through the hidden state, which it cannot (the state after the checkpointed call
  was used by a later call, or the state it started from requires a gradient).

:func:`snn.checkpoint` and :func:`snn.memory_efficient` pass the state explicitly and never
need the lookup. The records are dropped by :func:`snn.reset` (the log holds at most
``MAX_RECORDS`` calls per neuron, of which ``MAX_NO_GRAD_RECORDS`` made under no-grad).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "MAX_NO_GRAD_RECORDS",
    "MAX_RECORDS",
    "CheckpointStateError",
    "StartRecord",
    "call",
    "clear",
    "replaying",
]

MAX_RECORDS = 4096
"""Recorded calls kept per neuron between two resets (the oldest are dropped first)."""

MAX_NO_GRAD_RECORDS = 16
"""Of those, calls recorded because they ran under ``torch.no_grad`` in training mode (as
reentrant checkpointing runs them, but also plain no-grad use, e.g. streaming in single-step
mode): only the latest are kept, so such use holds a bounded number of old states."""


class CheckpointStateError(RuntimeError):
    """A checkpointed neuron call cannot be recomputed from the state it started from."""


@dataclass
class StartRecord:
    """One recorded call: the input's shape and fingerprint, the start and end states."""

    shape: torch.Size
    fingerprint: Tensor
    start: Any
    end: Any
    no_grad: bool = False
    consumed: bool = False


def _fingerprint(x: Tensor) -> Tensor:
    flat = x.detach().reshape(x.shape[0], -1) if x.dim() else x.detach().reshape(1, 1)
    return flat.sum(1, dtype=torch.float64)


def _hooks_active() -> bool:
    return torch._C._autograd._top_saved_tensors_default_hooks(False) is not None


def _in_backward() -> bool:
    return torch._C._current_graph_task_id() != -1


def _may_be_recomputed(module: Any) -> bool:
    return (not torch.is_grad_enabled() and module.training) or _hooks_active()


def _same_state(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if a is None or b is None:
        return False
    return all(torch.equal(s, t) for s, t in zip(a, b, strict=True))


def _requires_grad(state: Any) -> bool:
    return state is not None and any(s.requires_grad for s in state)


def _log(module: Any) -> list[StartRecord]:
    log = module.__dict__.get("_start_log")
    if log is None:
        log = []
        module.__dict__["_start_log"] = log
    return log


def clear(module: Any) -> None:
    """Forget the recorded calls of ``module``."""
    module.__dict__["_start_log"] = []


def _lookup(module: Any, x: Tensor) -> StartRecord:
    name = type(module).__name__
    fp = _fingerprint(x)
    matches = [
        r
        for r in _log(module)
        if r.shape == x.shape
        and r.fingerprint.device == fp.device
        and torch.allclose(r.fingerprint, fp, rtol=1e-5, atol=1e-6)
    ]
    if not matches:
        raise CheckpointStateError(
            f"{name}: recomputing a checkpointed call with input of shape {tuple(x.shape)}, but "
            "no call with this input was recorded since the last reset (was snn.reset called "
            "between the forward and the backward pass?); reset before the forward pass, or "
            "use snn.checkpoint, which passes the state explicitly"
        )
    first = matches[0]
    if any(not _same_state(first.start, r.start) for r in matches[1:]):
        raise CheckpointStateError(
            f"{name}: {len(matches)} recorded calls with indistinguishable inputs started from "
            "different states, so the recomputation cannot tell which one it repeats; use "
            "snn.checkpoint (or snn.memory_efficient), which passes the state explicitly"
        )
    return matches[-1]


def _check_reentrant(module: Any, record: StartRecord) -> None:
    name = type(module).__name__
    if record.consumed or _requires_grad(record.start):
        raise CheckpointStateError(
            f"{name}: reentrant checkpointing (use_reentrant=True) cannot carry the gradient "
            "through the neuron state into or out of the checkpointed call (its state "
            + ("was used by a later call" if record.consumed else "requires a gradient")
            + "); checkpoint the whole sequence from a reset state, or use "
            "use_reentrant=False or snn.checkpoint"
        )


def call(module: Any, x: Tensor, run: Callable[[Tensor], Tensor]) -> Tensor:
    """Run ``run(x)`` as ``module``'s forward, recording or replaying its start state.

    Args:
        module: the neuron (a :class:`~snn.neurons.BaseNeuron`).
        x: its input.
        run: the forward computation, which reads and updates ``module.state``.

    Raises:
        CheckpointStateError: when a recomputation cannot start from the right state.
    """
    if module.__dict__.get("_explicit_state", False) or torch.compiler.is_compiling():
        # Traced code (torch.compile, torch.export) has no recomputation to replay: the
        # compiler's own activation checkpointing saves what backward needs in its graph.
        return run(x)
    if _in_backward() and torch.is_grad_enabled():
        record = _lookup(module, x)
        if not _hooks_active():
            _check_reentrant(module, record)
        kept = module.state
        module.state = record.start
        module.__dict__["_replaying"] = True
        try:
            return run(x)
        finally:
            module.state = kept
            module.__dict__["_replaying"] = False
    start = module.state
    log = _log(module)
    if start is not None:
        for r in log:
            if r.end is start:
                r.consumed = True
    out = run(x)
    if _may_be_recomputed(module):
        no_grad = not torch.is_grad_enabled()
        log.append(StartRecord(x.shape, _fingerprint(x), start, module.state, no_grad))
        if no_grad and sum(r.no_grad for r in log) > MAX_NO_GRAD_RECORDS:
            del log[next(i for i, r in enumerate(log) if r.no_grad)]
        if len(log) > MAX_RECORDS:
            del log[0]
    return out


def replaying(module: Any) -> bool:
    """Whether ``module`` is inside a recomputation (its traces are not emitted)."""
    return bool(module.__dict__.get("_replaying", False))
