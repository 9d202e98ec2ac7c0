r"""Counting rules: what one call of each known module type costs.

A rule is ``rule(counts, module, inputs, output, ctx)``; it adds to ``counts`` (a
:class:`~snn.energy.counts.LayerCounts`) and may keep per-shape data (fan-out maps) in the
:class:`RuleContext` ``ctx``. :data:`RULES` maps module classes to ``(kind, rule)``;
subclasses match when they keep the parent's ``forward``.

Memory model (analytical, no data reuse, one access per operand of at most 64 bits):

- synaptic layer, binary input (event-driven): one read per input spike (the event), and per
  synaptic operation one weight read plus one read and one write of the target's accumulator;
- synaptic layer, graded input (frame-based): per effective MAC one weight read and one input
  read; one write per output element;
- neuron: per update one read and one write of each state variable; one write per spike
  emitted (the membrane itself for non-spiking neurons);
- elementwise layers (activation, norm, pool): one read per operation, one write per output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
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

__all__ = ["RULES", "Rule", "RuleContext", "find_rule", "is_binary"]



class RuleContext:
    """What a rule may use besides the call itself.

    Args:
        nonzero_only: count only synapses with a nonzero weight (NeuroBench's convention).
    """

    def __init__(self, nonzero_only: bool = True):
        self.nonzero_only = bool(nonzero_only)
        self.neuron_calls: list[tuple[bool, int, int]] = []
        """``(single_step, steps, batch)`` of every neuron call, in order."""
        self._cache: dict[tuple, Any] = {}

    def cached(self, key: tuple, make: Callable[[], Any], version: Any = None) -> Any:
        """``make()`` once per ``key`` (layer and input shape) and ``version`` (of the weights:
        a changed weight tensor replaces the entry, so the cache does not grow in training)."""
        entry = self._cache.get(key)
        if entry is None or entry[0] != version:
            entry = (version, make())
            self._cache[key] = entry
        return entry[1]

    def clear(self) -> None:
        """Forget cached maps and neuron calls."""
        self._cache.clear()
        self.neuron_calls.clear()


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


def _synaptic(counts: LayerCounts, x: Tensor, out: Tensor, ops: int, nnz: int) -> None:
    if is_binary(x):
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
    rows = x.reshape(-1, x.shape[-1])
    per_feature = (rows != 0).sum(0).to(torch.float64)
    ops = round(float((per_feature * fan).sum()))
    nnz = int(per_feature.sum())
    dense = rows.shape[0] * module.in_features * module.out_features
    counts.dense_macs += dense
    counts.dense_synops += dense
    _synaptic(counts, x, out, ops, nnz)
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
    per_pos = (batch != 0).sum(0).to(torch.float64)
    ops = round(float((per_pos * fan).sum()))
    nnz = int(per_pos.sum())
    counts.dense_macs += dense_conv_macs(module, out.numel())
    counts.dense_synops += round(batch.shape[0] * all_connections)
    _synaptic(counts, x, out, ops, nnz)
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
                                  x.shape[0] if single else x.shape[1]))


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
}
"""Module class -> (kind, rule). Extend by adding entries (tests parametrise over this table)."""


def find_rule(module: nn.Module) -> tuple[str, Rule, str]:
    """``(kind, rule, reason)`` for ``module``: an exact class match, else the nearest base class
    whose ``forward`` the module still uses; ``("uncounted", count_unknown, why)`` otherwise."""
    free = {**_FREE_REASONS, **_snn_free()}
    cls = type(module)
    if cls in free:
        return "free", count_free, free[cls]
    if cls in RULES:
        kind, rule = RULES[cls]
        return kind, rule, ""
    for base in cls.__mro__[1:]:
        if base in RULES and cls.forward is base.forward:
            kind, rule = RULES[base]
            return kind, rule, ""
        if isinstance(module, BaseNeuron) and base is BaseNeuron:
            kind, rule = RULES[BaseNeuron]
            return kind, rule, ""
    return "uncounted", count_unknown, f"no counting rule for {cls.__name__}"


# -- converted transformer modules (snn.converters.expectation) --------------------------------
# Rules for the signed multi-threshold neurons and expectation-compensation modules of converted
# transformers live in snn/energy/rules_converted.py; this block only registers them.
from snn.energy.rules_converted import CONVERTED_RULES  # noqa: E402

RULES.update(CONVERTED_RULES)
# -- end of converted transformer modules ------------------------------------------------------
