"""Counting rules for the per-step and re-parameterisable layers of :mod:`snn.layers`,
registered into :data:`snn.energy.rules.RULES`.

- :class:`~snn.layers.norm.PerStepLayer` (a convolution or linear layer with its own weights at
  each time step, the result of folding TEBN or BNTT into the previous layer): step ``t`` of
  its input ``[T, B, ...]`` is priced exactly as the shared layer with the weights of step
  ``t`` would be (``count_linear``, ``count_conv``:
  events are accumulates over their fan-out through that step's nonzero weights, graded inputs
  multiply-accumulates), and the steps are summed. The folded norm itself costs nothing.
- :class:`~snn.layers.repconv.BatchNormPad`: batch norm, one multiply-add per input element;
  its border is a constant per channel (written once, no arithmetic per sample).
"""

from __future__ import annotations

import copy
from typing import Any

from torch import Tensor, nn

from snn.energy.counts import LayerCounts
from snn.energy.rules import (
    Rule,
    RuleContext,
    _first_tensor,
    _weight_key,
    count_conv,
    count_linear,
    count_norm,
)
from snn.layers.norm import PerStepLayer
from snn.layers.repconv import BatchNormPad

__all__ = ["LAYER_RULES", "count_batch_norm_pad", "count_per_step_layer"]


class _StepContext:
    """The view of a :class:`RuleContext` that one step of a per-step layer sees: the same
    cache, and the event counts of that step's slice of the input."""

    def __init__(self, ctx: RuleContext, events: Tensor | None):
        self.nonzero_only = ctx.nonzero_only
        self._ctx = ctx
        self._events = events

    def cached(self, key: tuple, make: Any, version: Any = None) -> Any:
        return self._ctx.cached(key, make, version)

    def event_counts(self, x: Tensor) -> Tensor | None:
        return self._events


def _step_layer(module: PerStepLayer, t: int) -> nn.Module:
    """A stand-alone copy of the shared layer carrying the weights of step ``t``."""
    layer = copy.deepcopy(module.layer)
    layer.weight = nn.Parameter(module.weight[t].detach().clone(), requires_grad=False)
    layer.bias = nn.Parameter(module.bias[t].detach().clone(), requires_grad=False)
    return layer


def count_per_step_layer(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                         ctx: RuleContext) -> None:
    """:class:`~snn.layers.norm.PerStepLayer` on ``[T, B, ...]``: each step priced as the shared
    layer with that step's weights (see the module docstring)."""
    x = _first_tensor(inputs)
    events = ctx.event_counts(x)
    rule = count_linear if isinstance(module.layer, nn.Linear) else count_conv
    version = _weight_key(module)
    for t in range(x.shape[0]):
        layer = ctx.cached(("per-step", id(module), t), lambda t=t: _step_layer(module, t),
                           version)
        view = _StepContext(ctx, None if events is None else events[t])
        rule(counts, layer, (x[t],), out[t], view)
    counts.reason = "one set of weights per step (folded TEBN/BNTT): each step priced as its layer"


def count_batch_norm_pad(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                         ctx: RuleContext) -> None:
    """:class:`~snn.layers.repconv.BatchNormPad`: one multiply-add per input element; the
    constant border costs nothing per sample."""
    count_norm(counts, module, inputs, out, ctx)
    counts.reason = "batch norm; the padded border is a constant per channel"


LAYER_RULES: dict[type, tuple[str, Rule]] = {
    PerStepLayer: ("synaptic", count_per_step_layer),
    BatchNormPad: ("norm", count_batch_norm_pad),
}
"""Rules of the per-step and re-parameterisable layers, merged into
:data:`snn.energy.rules.RULES`."""
