r"""Counting rules: what one call of each known module type costs.

A rule is ``rule(counts, module, inputs, output, ctx)``; it adds to ``counts`` (a
:class:`~snn.energy.counts.LayerCounts`) and may keep per-shape data (fan-out maps) in the
:class:`RuleContext` ``ctx``. :data:`RULES` maps module classes to ``(kind, rule)``;
subclasses match when they keep the parent's ``forward``.

Events. A synaptic layer does accumulates (ACs) when its input is *events*, and
multiply-accumulates (MACs) for graded values. Events are:

- binary tensors (every element -1, 0 or 1: spikes, signed spikes, booleans);
- the output of a module whose class sets ``fixed_amplitude_events = True``: every nonzero
  element is one event of an amplitude fixed per element position (constant over time and
  batch), e.g. the spikes of amplitude :math:`\vartheta` of a converted network's
  :class:`~snn.converters.IFActivation`. The amplitude folds into the weights of the next
  layer (:math:`w \cdot \vartheta`), so each event costs one accumulate per synapse;
  the same holds for signed events of a fixed magnitude, e.g. the spikes :math:`\pm\theta` of a
  :class:`~snn.converters.expectation.SignedIFActivation` with one threshold pair (the sign
  makes the accumulate a subtraction), which sets the attribute as a property;
- what such events become through a module that only selects or moves them: the ``free``
  layers (reshape, identity, dropout at inference), max pooling (a selection within one channel,
  where the amplitude is the same), and modules whose class sets ``preserves_events = True``
  (their output is events of at most one per element when their input is);
- the output of average pooling of events: its value in a window is (number of events) times
  (amplitude / divisor), so the divisor folds into the next layer's weights as well, and each
  of the events in the window costs one accumulate per synapse of that layer (sum pooling, as
  sinabs counts it). Adaptive average pooling is folded when each input size is a multiple of
  the output size (equal windows, e.g. global pooling); otherwise its output is graded.

The counter tracks these through the forward pass (:meth:`RuleContext.event_counts` gives the
number of events per element of a tensor, or ``None`` for graded values); a new rule that
prices event-driven work should ask it rather than test for binary values.

Memory model (analytical, no data reuse, one access per operand of at most 64 bits):

- synaptic layer, event input (event-driven): one read per input spike (the event), and per
  synaptic operation one weight read plus one read and one write of the target's accumulator;
- synaptic layer, graded input (frame-based): per effective MAC one weight read and one input
  read; one write per output element;
- neuron: per update one read and one write of each state variable; one write per spike
  emitted (the membrane itself for non-spiking neurons);
- elementwise layers (activation, norm, pool): one read per operation, one write per output.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snn.energy.counts import LayerCounts
from snn.energy.fanout import (
    conv_fanout,
    dense_conv_macs,
    linear_fanout,
    pool_dims,
    pool_fanout,
)
from snn.neurons.base import BaseNeuron

__all__ = ["RULES", "Rule", "RuleContext", "find_rule", "is_binary", "propagate_events"]



class RuleContext:
    """What a rule may use besides the call itself.

    Args:
        nonzero_only: count only synapses with a nonzero weight (NeuroBench's convention).
    """

    def __init__(self, nonzero_only: bool = True):
        self.nonzero_only = bool(nonzero_only)
        self.neuron_calls: list[tuple[bool, int, int, int]] = []
        """``(single_step, steps, batch, id(module))`` of every neuron call, in order."""
        self._cache: dict[tuple, Any] = {}
        self._events: dict[int, tuple[Tensor, Tensor, int]] = {}

    def mark_events(self, tensor: Tensor, counts: Tensor | None = None) -> None:
        """Record that ``tensor`` holds events, ``counts`` of them per element (default: one
        per nonzero element). The tensor is kept alive until :meth:`end_call` so that its memory
        cannot be reused by another tensor during the forward pass."""
        if not isinstance(tensor, Tensor):
            return
        if counts is None:
            counts = tensor != 0
        key = _storage_key(tensor)
        if key is not None:
            self._events[key] = (tensor, counts.reshape(tensor.shape), _version(tensor))

    def event_counts(self, x: Tensor) -> Tensor | None:
        """Events per element of ``x`` (a tensor of ``x``'s shape), or ``None`` when ``x``
        holds graded values: ``x`` is a marked tensor or a same-size view of one (a reshape),
        unchanged since it was marked, or binary."""
        entry = self._events.get(_storage_key(x)) if x.numel() else None
        if entry is not None:
            marked, counts, version = entry
            if (x.numel() == marked.numel() and x.storage_offset() == marked.storage_offset()
                    and _version(x) == version and x.is_contiguous() and marked.is_contiguous()):
                return counts.reshape(x.shape)
        if is_binary(x):
            return x != 0
        return None

    def end_call(self) -> None:
        """Forget the event tensors of the finished forward pass."""
        self._events.clear()

    def cached(self, key: tuple, make: Callable[[], Any], version: Any = None) -> Any:
        """``make()`` once per ``key`` (layer and input shape) and ``version`` (of the weights:
        a changed weight tensor replaces the entry, so the cache does not grow in training)."""
        entry = self._cache.get(key)
        if entry is None or entry[0] != version:
            entry = (version, make())
            self._cache[key] = entry
        return entry[1]

    def clear(self) -> None:
        """Forget cached maps, neuron calls and event tensors."""
        self._cache.clear()
        self.neuron_calls.clear()
        self._events.clear()


def _storage_key(x: Tensor) -> int | None:
    """Address of the memory behind ``x`` (shared by its views), ``None`` without storage."""
    try:
        return x.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # sparse, nested or meta tensors
        return None


def _version(x: Tensor) -> int | None:
    """In-place modification counter of ``x`` (``None`` for inference-mode tensors, which
    track no version: an in-place change of a marked one is not detected)."""
    try:
        return x._version
    except RuntimeError:
        return None


Rule = Callable[[LayerCounts, nn.Module, tuple, Any, RuleContext], None]


def is_binary(x: Tensor) -> bool:
    """Whether every element of ``x`` is -1, 0 or 1 (spikes, signed spikes, or booleans)."""
    if x.dtype == torch.bool:
        return True
    return bool(((x == 0) | (x == 1) | (x == -1)).all())


def _first_tensor(inputs: tuple) -> Tensor:
    for item in inputs:
        if isinstance(item, Tensor):
            return item
    raise TypeError("the layer was called without a tensor input")


def _activity(counts: LayerCounts, x: Tensor, out: Any) -> None:
    counts.inputs += x.numel()
    counts.input_nonzero += int(torch.count_nonzero(x))
    if isinstance(out, Tensor):
        counts.outputs += out.numel()
        counts.output_nonzero += int(torch.count_nonzero(out))


def _synaptic(counts: LayerCounts, x: Tensor, out: Tensor, ops: int, nnz: int,
              events: bool | None = None) -> None:
    """Add ``ops`` synaptic operations driven by ``nnz`` input events or nonzero values: ACs
    when ``events`` (default: ``x`` is binary), else MACs."""
    if is_binary(x) if events is None else events:
        counts.acs += ops
        counts.input_reads += nnz
        counts.state_reads += ops
        counts.state_writes += ops
    else:
        counts.macs += ops
        counts.input_reads += ops
        counts.output_writes += out.numel()
    counts.weight_reads += ops


def _weight_key(module: nn.Module) -> tuple:
    w = module.weight
    return (w.data_ptr(), w._version, tuple(w.shape), str(w.device))


def count_linear(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                 ctx: RuleContext) -> None:
    """``nn.Linear`` on ``[..., in_features]``: every leading dimension is a batch dimension."""
    x = _first_tensor(inputs)
    fan = ctx.cached(
        ("linear", id(module), ctx.nonzero_only),
        lambda: linear_fanout(module, nonzero_only=ctx.nonzero_only),
        _weight_key(module),
    )
    events = ctx.event_counts(x)
    weight = (x != 0) if events is None else events
    rows = weight.reshape(-1, x.shape[-1])
    per_feature = rows.sum(0, dtype=torch.float64)
    ops = round(float((per_feature * fan).sum()))
    nnz = round(float(per_feature.sum()))
    dense = rows.shape[0] * module.in_features * module.out_features
    counts.dense_macs += dense
    counts.dense_synops += dense
    _synaptic(counts, x, out, ops, nnz, events is not None)
    _activity(counts, x, out)


def count_conv(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
               ctx: RuleContext) -> None:
    """``nn.Conv1d/2d/3d`` on ``[N, C, *spatial]`` (or one unbatched ``[C, *spatial]``)."""
    x = _first_tensor(inputs)
    spatial = len(module.kernel_size)
    batch = x if x.dim() == spatial + 2 else x.unsqueeze(0)
    in_shape = tuple(batch.shape[1:])
    fan = ctx.cached(
        ("conv", id(module), ctx.nonzero_only, in_shape),
        lambda: conv_fanout(module, in_shape, nonzero_only=ctx.nonzero_only),
        _weight_key(module),
    )
    all_connections = ctx.cached(
        ("conv-all", id(module), in_shape),
        lambda: float(conv_fanout(module, in_shape, nonzero_only=False).sum()),
        tuple(module.weight.shape),
    )
    events = ctx.event_counts(x)
    weight = (x != 0) if events is None else events
    per_pos = weight.reshape(batch.shape).sum(0, dtype=torch.float64)
    ops = round(float((per_pos * fan).sum()))
    nnz = round(float(per_pos.sum()))
    counts.dense_macs += dense_conv_macs(module, out.numel())
    counts.dense_synops += round(batch.shape[0] * all_connections)
    _synaptic(counts, x, out, ops, nnz, events is not None)
    _activity(counts, x, out)


def count_pool(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
               ctx: RuleContext) -> None:
    """Max/average/adaptive pooling: one accumulate (average) or comparison (max) per
    (nonzero input, window) pair; the dense count takes every input. The final 1/k scaling of
    average pooling is foldable into the next layer's weights and is not counted."""
    x = _first_tensor(inputs)
    dims = pool_dims(module)
    batch = x if x.dim() == dims + 2 else x.unsqueeze(0)
    in_shape = tuple(batch.shape[1:])
    fan = ctx.cached(("pool", id(module), in_shape), lambda: pool_fanout(module, in_shape))
    if fan is None:
        counts.kind = "uncounted"
        counts.reason = "max pooling with dilation != 1 has no exact counting rule"
        _activity(counts, x, out)
        return
    fan = fan.to(batch.device)
    per_pos = (batch != 0).sum(0).to(torch.float64)
    ops = round(float((per_pos * fan).sum()))
    counts.other_adds += ops
    counts.dense_other_adds += round(batch.shape[0] * float(fan.sum()))
    counts.input_reads += ops
    counts.output_writes += out.numel()
    _activity(counts, x, out)


def count_norm(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
               ctx: RuleContext) -> None:
    """Batch norm at inference: one multiply-add per element (scale and shift per channel)."""
    x = _first_tensor(inputs)
    counts.other_macs += x.numel()
    counts.dense_other_macs += x.numel()
    counts.input_reads += x.numel()
    counts.output_writes += x.numel()
    _activity(counts, x, out)


_COMPARISONS = {nn.ReLU: 1, nn.ReLU6: 2, nn.Hardtanh: 2}


def count_activation(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                     ctx: RuleContext) -> None:
    """ReLU (one comparison per element), ReLU6 and Hardtanh (two)."""
    x = _first_tensor(inputs)
    per = next(v for k, v in _COMPARISONS.items() if isinstance(module, k))
    counts.other_adds += per * out.numel()
    counts.dense_other_adds += per * out.numel()
    counts.input_reads += out.numel()
    counts.output_writes += out.numel()
    # the input of an in-place activation is its output by now: count elements only
    counts.inputs += x.numel()
    counts.outputs += out.numel()
    counts.output_nonzero += int(torch.count_nonzero(out))


def count_neuron(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                 ctx: RuleContext) -> None:
    """A neuron of :mod:`snn.neurons` (``[T, B, ...]`` in sequence mode, ``[B, ...]`` in
    single-step mode): one update per element of the input, *active* when that input is
    nonzero; spikes are the nonzero outputs of spiking neurons."""
    x = _first_tensor(inputs)
    state = module.state
    n_state = len(state) if isinstance(state, tuple) else 1
    updates = x.numel()
    active = int(torch.count_nonzero(x))
    counts.state_vars = n_state
    counts.neuron_updates += updates
    counts.active_updates += active
    counts.state_reads += updates * n_state
    counts.state_writes += updates * n_state
    if module.spiking:
        spikes = int(torch.count_nonzero(out))
        counts.spikes += spikes
        counts.output_writes += spikes
    else:
        counts.reason = "non-spiking"
        counts.output_writes += out.numel()
    _activity(counts, x, out)
    single = module.step_mode == "single"
    ctx.neuron_calls.append((single, 1 if single else x.shape[0],
                             x.shape[0] if single else x.shape[1], id(module)))


def count_spiking_max_pool(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                           ctx: RuleContext) -> None:
    """:class:`~snn.converters.SpikingMaxPool` on ``[T*B, C, ...]``: max pooling of the running
    input sums (the pooling rule of its ``pool``) plus one addition per nonzero input (the
    running sum) and one subtraction per output (the increment it emits)."""
    x = _first_tensor(inputs)
    count_pool(counts, module.pool, inputs, out, ctx)
    running = int(torch.count_nonzero(x))
    counts.other_adds += running + out.numel()
    counts.dense_other_adds += x.numel() + out.numel()


def count_free(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
               ctx: RuleContext) -> None:
    """No arithmetic: only activity is recorded."""
    tensors = [t for t in inputs if isinstance(t, Tensor)]
    if tensors:
        _activity(counts, tensors[0], out)


def count_unknown(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                  ctx: RuleContext) -> None:
    """A module without a rule: calls and activity are recorded, its work is *uncounted*."""
    count_free(counts, module, inputs, out, ctx)


# -- spiking transformers and SNN normalisations -------------------------------------------
# Spike-spike products are priced as the papers count them: Spikformer (Zhou et al., ICLR
# 2023, Sec. 3.3) and Spike-driven Transformer (Yao et al., NeurIPS 2023, Sec. 3.3 and its
# Table 1) treat a product of two spikes as a logical AND that costs nothing by itself and
# every addition it feeds as one accumulate (AC); the masks of SDSA and QKFormer are ANDs
# only. Multi-level spikes (integers 0..D) follow the I-LIF convention of SpikeYOLO (Luo et
# al., "Integer-Valued Training and Spike-Driven Inference Spiking Neural Network", ECCV 2024):
# an integer spike s is s binary spikes on D sub-steps, so a product of integer operands a * b
# costs a * b ACs. The attention scale is a constant factor foldable into the following
# neuron's threshold and is not counted.


def _integer_valued(*xs: Tensor) -> bool:
    return all(bool((x >= 0).all()) and bool((x == torch.round(x)).all()) for x in xs)


def count_spike_qkv(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                    ctx: RuleContext) -> None:
    """:class:`snn.layers.attention.SpikeQKV`, ``s * Q K^T V`` of spike operands
    ``[..., N, d]`` in the order the module computes it: ``Q (K^T V)`` when ``N > d``. With
    (multi-level) spike operands: ``K^T V`` costs ``sum_n |k_n| |v_n|`` ACs (``|.|`` the sum of
    a row's spikes) and ``Q (K^T V)`` costs ``q_{n,i}`` ACs per nonzero entry of row ``i`` of
    ``K^T V``; symmetrically for ``(Q K^T) V``. Dense count: ``2 N d^2`` (or ``2 N^2 d``)
    products per head."""
    q, k, v = (t.to(torch.float64) for t in inputs[:3])
    n, d = q.shape[-2], q.shape[-1]
    batch = q.numel() // (n * d)
    if n > d:
        first = (k.sum(-1) * v.sum(-1)).sum()
        ktv = k.transpose(-2, -1) @ v  # [..., d, d]
        second = (q.sum(-2) * (ktv != 0).sum(-1).to(torch.float64)).sum()
        dense = batch * 2 * n * d * d
    else:
        first = (q.sum(-2) * k.sum(-2)).sum()
        qk = q @ k.transpose(-2, -1)  # [..., n, n]
        second = ((qk != 0).sum(-2).to(torch.float64) * v.sum(-1)).sum()
        dense = batch * 2 * n * n * d
    ops = round(float(first + second))
    if _integer_valued(q, k, v):
        counts.acs += ops
        counts.reason = "spike-spike products: ANDs free, one AC per addition"
    else:
        counts.macs += dense
        counts.reason = "graded operands: every product a MAC"
    counts.dense_macs += dense
    counts.dense_synops += dense
    counts.input_reads += sum(int(torch.count_nonzero(t)) for t in (q, k, v))
    counts.output_writes += out.numel()
    _activity(counts, inputs[0], out)


def count_hadamard_sum(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                       ctx: RuleContext) -> None:
    """:class:`snn.layers.attention.HadamardSum`: SDSA's column sum of ``K (x) V`` and QKFormer's
    sums of ``Q``: the ANDs are free and every surviving unit of spike is one AC (an integer
    product ``a * b`` is ``a * b`` ACs)."""
    tensors = [t for t in inputs if isinstance(t, Tensor)]
    prod = tensors[0].to(torch.float64)
    for t in tensors[1:]:
        prod = prod * t.to(torch.float64)
    if _integer_valued(*tensors):
        counts.acs += round(float(prod.sum()))
    else:
        counts.macs += int(torch.count_nonzero(prod))
        counts.reason = "graded operands"
    counts.dense_synops += prod.numel()
    counts.dense_macs += prod.numel()
    counts.input_reads += sum(int(torch.count_nonzero(t)) for t in tensors)
    counts.output_writes += out.numel()
    _activity(counts, tensors[0], out)


def count_folded_norm(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                      ctx: RuleContext) -> None:
    """tdBN, TEBN, BNTT and the token batch norm: one multiply-add per element, like batch
    norm; all fold into the previous layer for inference (:func:`snn.layers.fold_norm`, per
    step for TEBN and BNTT), after which they cost nothing."""
    count_norm(counts, module, inputs, out, ctx)
    counts.reason = "foldable into the previous layer (snn.layers.fold_norm)"


def count_mpbn_neuron(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                      ctx: RuleContext) -> None:
    """:class:`snn.layers.norm.MPBNLIF` on ``[T, B, ...]``: a LIF update per element (one state
    variable) plus, before :meth:`~snn.layers.norm.MPBNLIF.reparameterize`, one multiply-add
    per update for the membrane's batch norm; after it the norm lives in the threshold and
    costs nothing."""
    x = _first_tensor(inputs)
    updates = x.numel()
    counts.kind = "neuron"
    counts.state_vars = 1
    counts.neuron_updates += updates
    counts.active_updates += int(torch.count_nonzero(x))
    counts.state_reads += updates
    counts.state_writes += updates
    spikes = int(torch.count_nonzero(out))
    counts.spikes += spikes
    counts.output_writes += spikes
    if module.folded:
        counts.reason = "membrane batch norm re-parameterised into the threshold"
    else:
        counts.other_macs += updates
        counts.dense_other_macs += updates
        counts.reason = "membrane batch norm: one multiply-add per update (fold: reparameterize)"
    _activity(counts, x, out)
    ctx.neuron_calls.append((False, x.shape[0], x.shape[1], id(module)))


def _transformer_rules() -> dict[type, tuple[str, Rule]]:
    from snn.layers import attention, norm

    return {
        attention.SpikeQKV: ("synaptic", count_spike_qkv),
        attention.HadamardSum: ("synaptic", count_hadamard_sum),
        attention.TokenBatchNorm: ("norm", count_folded_norm),
        norm.ThresholdDependentBatchNorm: ("norm", count_folded_norm),
        norm.TemporalEffectiveBatchNorm: ("norm", count_folded_norm),
        norm.BatchNormThroughTime: ("norm", count_folded_norm),
        norm.MPBNLIF: ("neuron", count_mpbn_neuron),
    }

# -- end of the spiking-transformer rules ---------------------------------------------------


_FREE_REASONS: dict[type, str] = {
    nn.Identity: "identity",
    nn.Flatten: "reshape only",
    nn.Unflatten: "reshape only",
    nn.Dropout: "identity at inference",
    nn.Dropout1d: "identity at inference",
    nn.Dropout2d: "identity at inference",
    nn.Dropout3d: "identity at inference",
    nn.AlphaDropout: "identity at inference",
}


def _snn_free() -> dict[type, str]:
    from snn.layers import encoders, readouts

    out: dict[type, str] = {}
    for cls in (encoders.RepeatEncoder, encoders.PoissonEncoder, encoders.LatencyEncoder,
                encoders.DeltaEncoder):
        out[cls] = "input encoding, outside the network (not priced)"
    for cls in (readouts.SpikeCount, readouts.SpikeRate, readouts.TimeMean, readouts.TimeLast,
                readouts.TimeMax):
        out[cls] = "readout over time, outside the network (not priced)"
    from snn.layers.attention import SpikeMask

    out[SpikeMask] = "spike mask (AND of spikes): no arithmetic (Yao et al. 2023)"
    return out


RULES: dict[type, tuple[str, Rule]] = {
    nn.Linear: ("synaptic", count_linear),
    nn.Conv1d: ("synaptic", count_conv),
    nn.Conv2d: ("synaptic", count_conv),
    nn.Conv3d: ("synaptic", count_conv),
    **{cls: ("pool", count_pool) for cls in (
        nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
        nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
        nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)},
    nn.BatchNorm1d: ("norm", count_norm),
    nn.BatchNorm2d: ("norm", count_norm),
    nn.BatchNorm3d: ("norm", count_norm),
    **{cls: ("activation", count_activation) for cls in _COMPARISONS},
    BaseNeuron: ("neuron", count_neuron),
    **{cls: ("free", count_free) for cls in _FREE_REASONS},
    **_transformer_rules(),
}
"""Module class -> (kind, rule). Extend by adding entries (tests parametrise over this table)."""


def converter_rules() -> dict[type, tuple[str, Rule]]:
    """Rules of the modules of :mod:`snn.converters` (``{}`` until that package is imported: a
    model cannot hold its modules before). Its :class:`~snn.converters.IFActivation` needs no
    rule: its neuron is counted, its output is marked as events (``fixed_amplitude_events``)
    and its own arithmetic is declared in its ``folded_functions``."""
    modules = sys.modules.get("snn.converters.modules")
    if modules is None:
        return {}
    return {
        modules.ChannelAffine: ("norm", count_norm),
        modules.SpikingMaxPool: ("pool", count_spiking_max_pool),
    }


def find_rule(module: nn.Module) -> tuple[str, Rule, str]:
    """``(kind, rule, reason)`` for ``module``: an exact class match, else the nearest base class
    whose ``forward`` the module still uses; ``("uncounted", count_unknown, why)`` otherwise.
    The table is :data:`RULES` plus :func:`converter_rules`."""
    free = {**_FREE_REASONS, **_snn_free()}
    table = {**RULES, **converter_rules()}
    cls = type(module)
    if cls in free:
        return "free", count_free, free[cls]
    if cls in table:
        kind, rule = table[cls]
        return kind, rule, ""
    for base in cls.__mro__[1:]:
        if base in table and cls.forward is base.forward:
            kind, rule = table[base]
            return kind, rule, ""
        if isinstance(module, BaseNeuron) and base is BaseNeuron:
            kind, rule = RULES[BaseNeuron]
            return kind, rule, ""
    return "uncounted", count_unknown, f"no counting rule for {cls.__name__}"


_MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
              nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE_AVG = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)


def _window_sums(module: nn.Module, counts: Tensor, out: Tensor) -> Tensor | None:
    """Events per window of an average pooling (the sum pooling of ``counts``), or ``None`` when
    the windows are unequal (adaptive pooling of a size that is no multiple of the output)."""
    c = counts.to(torch.float64)
    if isinstance(module, _AVG_POOLS):
        dims = pool_dims(module)
        unbatched = c.dim() == dims + 1
        if unbatched:
            c = c.unsqueeze(0)

        def tup(v: Any) -> tuple[int, ...]:
            return tuple(v) if isinstance(v, (tuple, list)) else (v,) * dims

        kernel, stride = tup(module.kernel_size), tup(module.stride or module.kernel_size)
        padding = tup(module.padding)
        if dims == 1:  # avg_pool1d has no divisor_override: pool as 2-d with a unit height
            s = F.avg_pool2d(c.unsqueeze(-2), (1, *kernel), (1, *stride), (0, *padding),
                             module.ceil_mode, True, divisor_override=1).squeeze(-2)
        else:
            pool = F.avg_pool2d if dims == 2 else F.avg_pool3d
            s = pool(c, kernel, stride, padding, module.ceil_mode, True, divisor_override=1)
        return s.squeeze(0) if unbatched else s
    if isinstance(module, _ADAPTIVE_AVG):
        dims = pool_dims(module)
        sizes, outs = c.shape[-dims:], out.shape[-dims:]
        if any(i % o for i, o in zip(sizes, outs)):
            return None
        return module.forward(c) * math.prod(i // o for i, o in zip(sizes, outs))
    return None


def propagate_events(module: nn.Module, kind: str, inputs: tuple, out: Any,
                     ctx: RuleContext) -> None:
    """After a call of ``module`` (of counting ``kind``), mark its output as events where the
    module docstring's rules say so."""
    if not isinstance(out, Tensor):
        return
    if getattr(module, "fixed_amplitude_events", False):
        ctx.mark_events(out)
        return
    x = next((t for t in inputs if isinstance(t, Tensor)), None)
    if x is None:
        return
    counts = ctx.event_counts(x)
    if counts is None:
        return
    if kind == "free" and out.numel() == x.numel():
        ctx.mark_events(out, counts)
    elif isinstance(module, _MAX_POOLS) and not getattr(module, "return_indices", False):
        # the amplitude is the same within a window (one channel): the largest value is the
        # element with the most events
        ctx.mark_events(out, module.forward(counts.to(x.dtype)).round().to(torch.int32))
    elif getattr(module, "preserves_events", False) and bool((counts <= 1).all()):
        ctx.mark_events(out)
    elif isinstance(module, _AVG_POOLS + _ADAPTIVE_AVG):
        sums = _window_sums(module, counts, out)
        if sums is not None and sums.shape == out.shape:
            ctx.mark_events(out, sums.round().to(torch.int32))


# -- converted transformer modules (snn.converters.expectation) --------------------------------
# Rules for the signed multi-threshold neurons and expectation-compensation modules of converted
# transformers live in snn/energy/rules_converted.py; this block only registers them.
from snn.energy.rules_converted import CONVERTED_RULES  # noqa: E402

RULES.update(CONVERTED_RULES)
# -- end of converted transformer modules ------------------------------------------------------

# -- per-step and re-parameterisable layers (snn.layers.norm.PerStepLayer, snn.layers.repconv) --
from snn.energy.rules_layers import LAYER_RULES  # noqa: E402

RULES.update(LAYER_RULES)
# -- end of per-step and re-parameterisable layers ---------------------------------------------
# -- sequence blocks (snn.layers.lmu, snn.layers.rwkv) -----------------------------------------
# Their rules live in snn/energy/rules_sequence.py; this block only registers them.
from snn.energy.rules_sequence import SEQUENCE_RULES  # noqa: E402

RULES.update(SEQUENCE_RULES)
# -- end of sequence blocks --------------------------------------------------------------------
