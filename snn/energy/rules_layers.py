r"""Counting rules for the per-step and re-parameterisable layers of :mod:`snn.layers`,
registered into :data:`snn.energy.rules.RULES`.

- :class:`~snn.layers.norm.PerStepLayer` (a convolution or linear layer with its own weights at
  each time step, the result of folding TEBN or BNTT into the previous layer): step ``t`` of
  its input ``[T, B, ...]`` is priced exactly as the shared layer with the weights of step
  ``t`` would be (``count_linear``, ``count_conv``:
  events are accumulates over their fan-out through that step's nonzero weights, graded inputs
  multiply-accumulates), and the steps are summed. The folded norm itself costs nothing.
- :class:`~snn.layers.repconv.BatchNormPad`: batch norm, one multiply-add per input element;
  its border is a constant per channel (written once, no arithmetic per sample).
- ``nn.LayerNorm`` (SpikeGPT's blocks), at inference, over groups of :math:`n` elements (the
  ``normalized_shape``; :math:`E` elements in :math:`G = E / n` groups). Its statistics depend
  on the sample, so unlike batch norm it cannot be folded into a neighbouring layer, and zeros
  cost as much as any value (dense == effective). Per element: the sum for the mean (1 add),
  the centring :math:`x - \mu` (1 add), the squared deviation accumulated into the variance
  (1 multiply-add), the normalisation :math:`(x - \mu) \cdot r` (1 multiply) and, with
  ``elementwise_affine``, :math:`\gamma \hat x + \beta` (1 multiply-add). Per group: the two
  scalings by :math:`1/n` (2 multiplies) and :math:`\sigma^2 + \epsilon` (1 add). So
  ``other_adds`` :math:`= 2E + G` and ``other_macs`` :math:`= 3E + 2G` (:math:`2E + 2G`
  without the affine map): additions as ACs and multiplies as MACs of the target, the
  convention of the elementwise work everywhere in this counter (priced with the target's
  figures, e.g. Horowitz, ISSCC 2014, for ``cmos45_fp32``). The square root and the
  reciprocal, one each per group, have no category here and are not priced (``reason`` says
  so). Memory: two reads of each input element (statistics, then normalisation), one read of
  each :math:`\gamma` and :math:`\beta` per element, one write per output.
- ``nn.Embedding``: a token is one input event, its index, and the layer is the weight matrix
  applied to the one-hot token: on an event-driven synapse array that event drives the
  :math:`D` synapses of its row, :math:`D` accumulates per token (``acs``, with one weight
  read and one read and write of the target's accumulator each, as every event-driven synaptic
  layer here). A dense processor looks the row up with no arithmetic (``dense_macs`` 0; its
  equivalent-ANN cost is the output writes); ``dense_synops`` counts every element of the
  one-hot vector times its fan-out, :math:`V D` per token (NeuroBench's dense count).
  ``max_norm`` (which rescales rows during the call) is not priced: such a layer is reported
  as uncounted.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from torch import Tensor, nn

from snn.energy.counts import LayerCounts
from snn.energy.rules import (
    Rule,
    RuleContext,
    _activity,
    _first_tensor,
    _weight_key,
    count_conv,
    count_linear,
    count_norm,
    count_unknown,
)
from snn.layers.norm import PerStepLayer
from snn.layers.repconv import BatchNormPad

__all__ = [
    "LAYER_RULES",
    "count_batch_norm_pad",
    "count_embedding",
    "count_layer_norm",
    "count_per_step_layer",
]


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


def count_layer_norm(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                     ctx: RuleContext) -> None:
    """``nn.LayerNorm`` at inference: ``2E + G`` additions and ``3E + 2G`` multiply-adds
    (``2E + 2G`` without the affine map) for ``E`` elements in ``G`` groups; the square root
    and reciprocal per group are not priced (see the module docstring)."""
    x = _first_tensor(inputs)
    e = x.numel()
    n = math.prod(module.normalized_shape)
    groups = e // n if n else 0
    affine = module.weight is not None
    adds = 2 * e + groups
    macs = (3 if affine else 2) * e + 2 * groups
    counts.other_adds += adds
    counts.dense_other_adds += adds
    counts.other_macs += macs
    counts.dense_other_macs += macs
    counts.input_reads += 2 * e
    if affine:
        counts.weight_reads += e * (2 if module.bias is not None else 1)
    counts.output_writes += e
    _activity(counts, x, out)
    counts.reason = (f"layer norm (not foldable); {groups} square roots and {groups} "
                     "reciprocals (one each per group) not priced")


def count_embedding(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                    ctx: RuleContext) -> None:
    """``nn.Embedding``: each token is one event driving the ``D`` synapses of its row,
    ``D`` accumulates per token (see the module docstring); with ``max_norm`` the layer is
    uncounted."""
    x = _first_tensor(inputs)
    if module.max_norm is not None:
        count_unknown(counts, module, inputs, out, ctx)
        counts.kind = "uncounted"
        counts.reason = "nn.Embedding with max_norm rescales its rows in the call: no rule"
        return
    tokens, dim = x.numel(), module.embedding_dim
    ops = tokens * dim
    counts.acs += ops
    counts.dense_synops += ops * module.num_embeddings
    counts.weight_reads += ops
    counts.input_reads += tokens
    counts.state_reads += ops
    counts.state_writes += ops
    _activity(counts, x, out)
    counts.reason = "token lookup as one input event per token: one accumulate per row element"


LAYER_RULES: dict[type, tuple[str, Rule]] = {
    PerStepLayer: ("synaptic", count_per_step_layer),
    BatchNormPad: ("norm", count_batch_norm_pad),
    nn.LayerNorm: ("norm", count_layer_norm),
    nn.Embedding: ("synaptic", count_embedding),
}
"""Rules of the per-step and re-parameterisable layers, merged into
:data:`snn.energy.rules.RULES`."""
