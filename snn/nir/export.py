"""Export a model to a NIR graph.

The model is traced with :mod:`torch.fx`, stopping at neurons, :class:`~snn.layers.TimeDistributed`
wrappers (whose layers become a chain of nodes) and ``torch.nn`` layers. Each leaf becomes one
NIR node (a :class:`~snn.nir.Recurrent` layer becomes its neuron and weight in a two-node cycle);
additions of branches become several edges into the same node, which NIR sums.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np
import torch
from torch import Tensor, fx, nn

from snn.layers.recurrent import Recurrent
from snn.layers.time import TimeDistributed
from snn.neurons.base import BaseNeuron, SpikingNeuron
from snn.neurons.cuba import CubaLIF
from snn.neurons.lif import IF, LI, LIF, ParametricLIF
from snn.nir.layers import Scale, SumPool2d
from snn.nir.mapping import Discretisation, get_discretisation, resistance

__all__ = ["EXPORTERS", "NIRExportError", "export"]


class NIRExportError(ValueError):
    """A model (or one of its layers) cannot be written as a NIR graph; the message names the
    layer and what to change."""


@dataclass
class _Ctx:
    """What an exporter knows about the layer it converts."""

    name: str
    in_shape: tuple[int, ...]  # one sample, no time or batch dimension
    out_shape: tuple[int, ...]
    lead: int  # leading (time/batch) dimensions of the layer's input tensor
    dt: float
    disc: Discretisation
    allow_any_reset: bool


Exporter = Callable[[nn.Module, _Ctx], nir.NIRNode]


def _np(t: Tensor | float) -> np.ndarray:
    if isinstance(t, Tensor):
        return t.detach().cpu().double().numpy()
    return np.asarray(t, dtype=np.float64)


def _full(value: Tensor | float, shape: tuple[int, ...], what: str, ctx: _Ctx) -> np.ndarray:
    arr = _np(value)
    try:
        return np.broadcast_to(arr, shape).astype(np.float64).copy()
    except ValueError:
        raise NIRExportError(
            f"layer {ctx.name!r}: {what} of shape {arr.shape} does not broadcast to the "
            f"neuron shape {shape}"
        ) from None


# -- stateless layers ------------------------------------------------------------------------


def _linear(m: nn.Linear, ctx: _Ctx) -> nir.NIRNode:
    if m.bias is None:
        return nir.Linear(weight=_np(m.weight))
    return nir.Affine(weight=_np(m.weight), bias=_np(m.bias))


def _conv(m: nn.Conv1d | nn.Conv2d, ctx: _Ctx) -> nir.NIRNode:
    if m.padding_mode != "zeros":
        raise NIRExportError(
            f"layer {ctx.name!r}: NIR convolutions pad with zeros, got padding_mode="
            f"{m.padding_mode!r}"
        )
    bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels)
    spatial = ctx.in_shape[1:]
    if isinstance(m, nn.Conv1d):
        pad = m.padding if isinstance(m.padding, str) else m.padding[0]
        return nir.Conv1d(
            input_shape=spatial[0],
            weight=_np(m.weight),
            stride=m.stride[0],
            padding=pad,
            dilation=m.dilation[0],
            groups=m.groups,
            bias=bias,
        )
    return nir.Conv2d(
        input_shape=tuple(spatial),
        weight=_np(m.weight),
        stride=tuple(m.stride),
        padding=m.padding if isinstance(m.padding, str) else tuple(m.padding),
        dilation=tuple(m.dilation),
        groups=m.groups,
        bias=bias,
    )


def _pair(v: int | tuple[int, ...]) -> np.ndarray:
    return np.array((v, v) if isinstance(v, int) else tuple(v), dtype=np.int64)


def _avgpool(m: nn.AvgPool2d, ctx: _Ctx) -> nir.NIRNode:
    if m.ceil_mode:
        raise NIRExportError(f"layer {ctx.name!r}: NIR pooling has no ceil_mode")
    k = _pair(m.kernel_size)
    stride = _pair(m.stride if m.stride is not None else m.kernel_size)
    pad = _pair(m.padding)
    if pad.any() and not m.count_include_pad:
        raise NIRExportError(
            f"layer {ctx.name!r}: NIR pooling counts padding as zeros; use count_include_pad=True"
        )
    if m.divisor_override == 1:
        return nir.SumPool2d(kernel_size=k, stride=stride, padding=pad)
    if m.divisor_override not in (None, int(np.prod(k))):
        raise NIRExportError(
            f"layer {ctx.name!r}: divisor_override={m.divisor_override} is neither an average "
            f"nor a sum (divisor 1) over the {tuple(k)} window"
        )
    return nir.AvgPool2d(kernel_size=k, stride=stride, padding=pad)


def _flatten(m: nn.Flatten, ctx: _Ctx) -> nir.NIRNode:
    def shift(d: int) -> int:
        if d < 0:
            return d
        if d < ctx.lead:
            raise NIRExportError(
                f"layer {ctx.name!r}: Flatten over dimension {d} would merge the time/batch "
                f"dimensions ({ctx.lead} leading); flatten from dimension {ctx.lead} on"
            )
        return d - ctx.lead

    return nir.Flatten(
        input_type={"input": np.array(ctx.in_shape)},
        start_dim=shift(m.start_dim),
        end_dim=shift(m.end_dim),
    )


def _scale(m: Scale, ctx: _Ctx) -> nir.NIRNode:
    return nir.Scale(scale=_full(m.scale, ctx.in_shape, "scale", ctx))


# -- neurons ---------------------------------------------------------------------------------


def _spike_meta(m: SpikingNeuron, ctx: _Ctx) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """v_threshold, v_reset and the metadata that restores training-only options exactly."""
    if m.reset != "hard" and not ctx.allow_any_reset:
        raise NIRExportError(
            f"layer {ctx.name!r}: reset={m.reset!r} has no NIR counterpart (NIR neurons reset to "
            "v_reset); build the model with reset='hard', or pass allow_any_reset=True to store "
            "the reset in the node's metadata (read back by snn.nir.load, other simulators will "
            "reset to v_reset)"
        )
    shape = ctx.out_shape
    thr = _full(m.threshold, shape, "threshold", ctx)
    v_reset = np.full(shape, m.v_reset if m.reset == "hard" else 0.0)
    meta = {
        "snn_reset": m.reset,
        "snn_v_reset": float(m.v_reset),
        "snn_surrogate": m.surrogate.name,
        "snn_surrogate_fields": ",".join(f.name for f in dataclasses.fields(m.surrogate)),
        "snn_surrogate_values": np.array(m.surrogate.kernel_params, dtype=np.float64),
        "snn_detach_reset": int(m.detach_reset),
    }
    return thr, v_reset, meta


def _decay_meta(name: str, value: Tensor | float, ctx: _Ctx) -> dict[str, Any]:
    return {
        f"snn_{name}": np.atleast_1d(_np(value)),
        "snn_dt": ctx.dt,
        "snn_discretisation": ctx.disc.name,
    }


def _taus(value: Tensor | float, what: str, ctx: _Ctx) -> np.ndarray:
    decay = _full(value, ctx.out_shape, what, ctx)
    return np.vectorize(lambda b: ctx.disc.tau(float(b), ctx.dt), otypes=[np.float64])(decay)


def _resistances(value: Tensor | float, decay_input: bool, ctx: _Ctx) -> np.ndarray:
    decay = _full(value, ctx.out_shape, "beta", ctx)
    return np.vectorize(lambda b: resistance(float(b), decay_input), otypes=[np.float64])(decay)


def _check_leaky(value: Tensor | float, what: str, ctx: _Ctx) -> None:
    arr = _np(value)
    if np.any(arr >= 1.0) or np.any(arr <= 0.0):
        raise NIRExportError(
            f"layer {ctx.name!r}: {what} must lie in (0, 1) to map to a finite, positive time "
            f"constant; got values in [{arr.min()}, {arr.max()}] (a decay of 1 is an IF neuron)"
        )


def _if(m: IF, ctx: _Ctx) -> nir.NIRNode:
    thr, v_reset, meta = _spike_meta(m, ctx)
    meta.update({"snn_kind": "if", "snn_dt": ctx.dt})
    return nir.IF(
        r=np.full(ctx.out_shape, 1.0 / ctx.dt), v_threshold=thr, v_reset=v_reset, metadata=meta
    )


def _lif(m: LIF | ParametricLIF, ctx: _Ctx) -> nir.NIRNode:
    beta = m.beta
    _check_leaky(beta, "beta", ctx)
    thr, v_reset, meta = _spike_meta(m, ctx)
    meta.update(_decay_meta("beta", beta, ctx))
    meta.update({"snn_kind": "lif", "snn_decay_input": int(m.decay_input)})
    return nir.LIF(
        tau=_taus(beta, "beta", ctx),
        r=_resistances(beta, m.decay_input, ctx),
        v_leak=np.zeros(ctx.out_shape),
        v_threshold=thr,
        v_reset=v_reset,
        metadata=meta,
    )


def _cuba(m: CubaLIF, ctx: _Ctx) -> nir.NIRNode:
    _check_leaky(m.alpha, "alpha", ctx)
    _check_leaky(m.beta, "beta", ctx)
    thr, v_reset, meta = _spike_meta(m, ctx)
    meta.update(_decay_meta("beta", m.beta, ctx))
    meta.update({"snn_alpha": np.atleast_1d(_np(m.alpha)), "snn_kind": "cuba_lif"})
    meta["snn_decay_input"] = int(m.decay_input)
    alpha = _full(m.alpha, ctx.out_shape, "alpha", ctx)
    return nir.CubaLIF(
        tau_syn=_taus(m.alpha, "alpha", ctx),
        tau_mem=_taus(m.beta, "beta", ctx),
        r=_resistances(m.beta, m.decay_input, ctx),
        v_leak=np.zeros(ctx.out_shape),
        v_threshold=thr,
        v_reset=v_reset,
        w_in=1.0 / (1.0 - alpha),
        metadata=meta,
    )


def _li(m: LI, ctx: _Ctx) -> nir.NIRNode:
    _check_leaky(m.beta, "beta", ctx)
    meta = _decay_meta("beta", m.beta, ctx)
    meta.update({"snn_kind": "li", "snn_decay_input": int(m.decay_input)})
    return nir.LI(
        tau=_taus(m.beta, "beta", ctx),
        r=_resistances(m.beta, m.decay_input, ctx),
        v_leak=np.zeros(ctx.out_shape),
        metadata=meta,
    )


EXPORTERS: dict[type[nn.Module], Exporter] = {
    nn.Linear: _linear,
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.AvgPool2d: _avgpool,
    SumPool2d: _avgpool,
    nn.Flatten: _flatten,
    Scale: _scale,
    IF: _if,
    LIF: _lif,
    ParametricLIF: _lif,
    CubaLIF: _cuba,
    LI: _li,
}
"""Module class -> function building its NIR node. Register a class here to export it."""

_PASS_THROUGH = (nn.Identity, nn.Dropout)


def _foldable(layer: nn.Module, norm: nn.Module | None) -> bool:
    """Whether ``norm`` is an inference-mode batch norm that folds into ``layer`` before it."""
    return (
        isinstance(layer, nn.Linear | nn.Conv1d | nn.Conv2d)
        and isinstance(norm, nn.modules.batchnorm._BatchNorm)
        and not norm.training
        and norm.running_mean is not None
        and norm.num_features
        == (layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels)
    )


def _fold_batchnorm(layer: nn.Module, norm: nn.Module) -> nn.Module:
    r"""A copy of ``layer`` with the following inference-mode batch norm folded in:
    :math:`W' = W\gamma/\sqrt{\sigma^2+\epsilon}`,
    :math:`b' = (b-\mu)\gamma/\sqrt{\sigma^2+\epsilon} + \beta`."""
    folded = copy.deepcopy(layer)
    with torch.no_grad():
        scale = torch.rsqrt(norm.running_var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight
        shift = -norm.running_mean * scale
        if norm.bias is not None:
            shift = shift + norm.bias
        folded.weight.mul_(scale.view(-1, *([1] * (folded.weight.dim() - 1))))
        bias = scale * layer.bias if layer.bias is not None else torch.zeros_like(shift)
        folded.bias = nn.Parameter(bias + shift)
    return folded


def _voting(m: nn.Module, ctx: _Ctx) -> nir.NIRNode:
    """:class:`snn.models.blocks.VotingLayer`: the mean of each group of ``voters`` outputs,
    a linear map."""
    n_in = int(ctx.in_shape[-1])
    if len(ctx.in_shape) != 1 or n_in % m.voters:
        raise NIRExportError(
            f"layer {ctx.name!r}: voting over {ctx.in_shape} is not a flat multiple of "
            f"{m.voters} voters"
        )
    weight = np.kron(np.eye(n_in // m.voters), np.full((1, m.voters), 1.0 / m.voters))
    return nir.Linear(weight=weight)


def _inference_identity(m: nn.Module) -> bool:
    """Whether ``m`` is the identity at inference (time-consistent dropout in eval mode)."""
    from snn.models.blocks import TimeConsistentDropout

    return isinstance(m, TimeConsistentDropout) and (not m.training or m.p == 0)


def _exporter(m: nn.Module, name: str) -> Exporter:
    for cls in type(m).__mro__:
        if cls in EXPORTERS:
            return EXPORTERS[cls]
    from snn.models.blocks import VotingLayer  # here: snn.models imports this package

    if isinstance(m, VotingLayer):
        return _voting
    hint = ""
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        hint = (
            "; fold batch normalisation into the preceding layer first (done for you when a "
            "Linear/Conv comes directly before it in the same Sequential and the model is in "
            "eval mode)"
        )
    elif isinstance(m, nn.MaxPool2d | nn.MaxPool1d):
        hint = "; NIR 1.0 has no max pooling, use average pooling"
    elif isinstance(m, BaseNeuron):
        hint = "; NIR has no node for this neuron model"
    raise NIRExportError(
        f"layer {name!r} ({type(m).__name__}) has no NIR node{hint}; exportable: "
        f"{sorted(c.__name__ for c in EXPORTERS)}, Recurrent, TimeDistributed, Sequential"
    )


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, BaseNeuron | TimeDistributed | Recurrent):
            return True
        if isinstance(m, nn.Sequential):
            return False
        return type(m) in EXPORTERS or super().is_leaf_module(m, qualname) or _is_snn_layer(m)


def _is_snn_layer(m: nn.Module) -> bool:
    return type(m).__module__.startswith("snn.")


class _Builder:
    def __init__(self, dt: float, disc: Discretisation, allow_any_reset: bool):
        self.dt, self.disc, self.allow_any_reset = dt, disc, allow_any_reset
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], int]] = {}
        self.out_shapes: dict[str, tuple[int, ...]] = {}
        self.missing: list[tuple[str, str, str]] = []  # (layer, class, message)

    def ctx(self, name: str) -> _Ctx:
        in_shape, out_shape, lead = self.shapes[name]
        return _Ctx(name, in_shape, out_shape, lead, self.dt, self.disc, self.allow_any_reset)

    def connect(self, sources: list[str], target: str) -> None:
        self.edges.extend((s, target) for s in sources)

    def leaf(
        self, name: str, m: nn.Module, sources: list[str], qual: str | None = None
    ) -> list[str]:
        """Add the nodes of module ``m`` (qualified name ``qual``, default ``name``) fed by
        ``sources``; return the names that feed on."""
        qual = name if qual is None else qual
        if isinstance(m, _PASS_THROUGH) or _inference_identity(m):
            return sources
        if isinstance(m, nn.Sequential):  # TimeDistributed included
            children = list(m.named_children())
            k = 0
            while k < len(children):
                i, child = children[k]
                following = children[k + 1][1] if k + 1 < len(children) else None
                if _foldable(child, following):
                    child = _fold_batchnorm(child, following)  # the norm is skipped below
                    k += 1
                sources = self.leaf(f"{name}.{i}", child, sources, f"{qual}.{i}")
                k += 1
            return sources
        if isinstance(m, Recurrent):
            if not isinstance(m.neuron, BaseNeuron):
                raise NIRExportError(
                    f"layer {name!r}: only a Recurrent around a bare neuron is exportable (its "
                    "neuron is a two-node cycle with the recurrent weight in NIR)"
                )
            # a sub-graph, as snnTorch writes its recurrent layers: input -> neuron <-> weight
            inner = _Builder(self.dt, self.disc, self.allow_any_reset)
            inner.shapes = {
                k[len(qual) + 1 :]: v for k, v in self.shapes.items() if k.startswith(qual + ".")
            }
            if "neuron" not in inner.shapes:
                raise NIRExportError(f"layer {name!r} was not called on sample_input")
            shape = np.array(inner.shapes["neuron"][1])
            entry, in_shape = "neuron", shape
            try:  # name the inner layers by their full module path in errors
                inner.node("neuron", "neuron", m.neuron)
                inner.node("recurrent", "recurrent", m.recurrent)
                if m.feedforward is not None:  # input -> feedforward -> neuron <-> weight
                    inner.node("feedforward", "feedforward", m.feedforward)
                    entry, in_shape = "feedforward", np.array(inner.shapes["feedforward"][0])
                    inner.edges.append(("feedforward", "neuron"))
                inner.raise_missing()
            except NIRExportError as err:
                raise NIRExportError(str(err).replace("layer '", f"layer '{name}.")) from None
            inner.nodes["input"] = nir.Input(input_type={"input": in_shape})
            inner.nodes["output"] = nir.Output(output_type={"output": shape})
            inner.edges += [
                ("input", entry),
                ("neuron", "recurrent"),
                ("recurrent", "neuron"),
                ("neuron", "output"),
            ]
            self.nodes[name] = nir.NIRGraph(
                nodes=inner.nodes, edges=inner.edges, metadata={}, type_check=False
            )
            self.out_shapes[name] = tuple(shape)
            self.connect(sources, name)
            return [name]
        self.node(name, qual, m)
        self.connect(sources, name)
        return [name]

    def node(self, name: str, qual: str, m: nn.Module) -> None:
        if qual not in self.shapes:
            raise NIRExportError(
                f"layer {name!r} was not called when the model ran on sample_input, so its shape "
                "is unknown"
            )
        ctx = self.ctx(qual)
        ctx.name = name
        try:
            exporter = _exporter(m, name)
        except NIRExportError as err:  # keep going to name every such layer at once
            self.missing.append((name, type(m).__name__, str(err)))
            self.out_shapes[name] = ctx.out_shape
            return
        self.nodes[name] = exporter(m, ctx)
        self.out_shapes[name] = ctx.out_shape

    def raise_missing(self) -> None:
        """Raise for the layers without a NIR node: the first in full, the others by name."""
        if not self.missing:
            return
        message = self.missing[0][2]
        if len(self.missing) > 1:
            others = ", ".join(f"{n!r} ({t})" for n, t, _ in self.missing[1:])
            message += f". Also without a NIR node: {others}"
        raise NIRExportError(message)


def _folded_modules(model: nn.Module) -> set[str]:
    """Names of the modules that see time folded into the batch (``[T*B, ...]``)."""
    from snn.nir.load import NIRGraphModule

    folded: set[str] = set()
    for name, m in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(m, TimeDistributed):
            folded.update(prefix + c for c, _ in m.named_modules() if c)
        if isinstance(m, NIRGraphModule):
            for key, layer in m.layers.items():
                if key not in m._stateful:
                    folded.update(
                        f"{prefix}layers.{key}" + (f".{c}" if c else "")
                        for c, _ in layer.named_modules()
                    )
    return folded


def _record_shapes(
    model: nn.Module, sample: Tensor, lead: int
) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], int]]:
    """Per-sample input/output shapes of every module, from one forward pass on a copy."""
    from snn.neurons.utils import reset

    model = reset(copy.deepcopy(model))
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], int]] = {}
    handles = []
    folded = _folded_modules(model) if lead == 2 else set()
    recurrent_parts = {
        f"{n}.{p}"
        for n, m in model.named_modules()
        if isinstance(m, Recurrent)
        for p in ("neuron", "recurrent")
    }

    for name, m in model.named_modules():
        if not name:
            continue

        def hook(mod: nn.Module, args: tuple, out: Any, name: str = name) -> None:
            if not args or not isinstance(args[0], Tensor) or not isinstance(out, Tensor):
                return
            k = 1 if name in folded else lead
            if name in recurrent_parts:  # called one step at a time by Recurrent
                single = not isinstance(mod, BaseNeuron) or mod.step_mode == "single"
                k = 1 if single else 2
            shapes.setdefault(name, (tuple(args[0].shape[k:]), tuple(out.shape[k:]), k))

        handles.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model(sample)
    for h in handles:
        h.remove()
    return shapes


def _walk_recorded(model: nn.Module, sample: Tensor, builder: _Builder, why: str) -> list[str]:
    """Add the nodes of a model that torch.fx cannot trace (e.g. a ``forward`` that checks its
    input's shape) from one run: the leaf modules in call order, each fed by the layer that
    produced its input tensor. Computation outside layers cannot be recorded and is refused."""
    from snn.neurons.utils import reset

    model = reset(copy.deepcopy(model))
    tracer = _Tracer()
    leaves: dict[nn.Module, str] = {}

    def visit(m: nn.Module, name: str) -> None:
        for child_name, child in m.named_children():
            qual = f"{name}.{child_name}" if name else child_name
            if tracer.is_leaf_module(child, qual):
                leaves.setdefault(child, qual)
            else:
                visit(child, qual)

    visit(model, "")
    calls: list[tuple[str, nn.Module, Any, Any]] = []
    handles = [
        m.register_forward_hook(lambda mod, args, out, n=n: calls.append((n, mod, args, out)))
        for m, n in leaves.items()
    ]
    try:
        with torch.no_grad():
            result = model(sample)
    finally:
        for h in handles:
            h.remove()
    producers: dict[int, list[str]] = {id(sample): ["input"]}
    seen: set[str] = set()
    for name, mod, args, out in calls:
        if name in seen:
            raise NIRExportError(
                f"layer {name!r} is called more than once per step; NIR export of a model that "
                f"torch.fx cannot trace ({why}) needs each layer called once"
            )
        seen.add(name)
        if len(args) != 1 or not isinstance(args[0], Tensor) or not isinstance(out, Tensor):
            raise NIRExportError(f"layer {name!r} must take and return one tensor")
        sources = producers.get(id(args[0]))
        if sources is None:
            raise NIRExportError(
                f"layer {name!r} receives a tensor computed by code outside any layer; NIR "
                f"export needs the model's forward to only chain layers (torch.fx could not "
                f"trace it: {why})"
            )
        producers[id(out)] = builder.leaf(name, mod, sources)
    if not isinstance(result, Tensor) or id(result) not in producers:
        raise NIRExportError(
            "the model's output is computed by code outside any layer; NIR export needs the "
            f"last layer's output to be the model's output (torch.fx could not trace: {why})"
        )
    return producers[id(result)]


def _walk_fx(model: nn.Module, builder: _Builder, sample: Tensor) -> list[str]:
    """Add the nodes of a traceable model; return the names feeding the output."""
    try:
        graph = _Tracer().trace(model)
    except Exception as err:  # fx raises many types for untraceable code
        why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return _walk_recorded(model, sample, builder, why)
    modules = dict(model.named_modules())
    values: dict[fx.Node, list[str]] = {}
    result: list[str] | None = None
    for node in graph.nodes:
        if node.op == "placeholder":
            if values:
                raise NIRExportError("NIR export supports models with a single input")
            values[node] = ["input"]
        elif node.op == "call_module":
            arg = node.args[0] if node.args else None
            if not isinstance(arg, fx.Node) or len(node.args) > 1 or node.kwargs:
                raise NIRExportError(f"layer {node.target!r} must be called with one tensor")
            values[node] = builder.leaf(str(node.target), modules[node.target], values[arg])
        elif node.op == "call_function" and node.target in (operator.add, torch.add):
            a, b = node.args[:2]
            if not (isinstance(a, fx.Node) and isinstance(b, fx.Node)):
                raise NIRExportError(
                    f"{node.name}: only the sum of two layer outputs is exportable"
                )
            values[node] = values[a] + values[b]
        elif node.op == "output":
            out = node.args[0]
            if not isinstance(out, fx.Node):
                raise NIRExportError("NIR export supports models with a single tensor output")
            result = values[out]
        else:
            raise NIRExportError(
                f"operation {node.op} {getattr(node.target, '__name__', node.target)!r} "
                f"({node.name}) has no NIR node; only layers, neurons and additions are exportable"
            )
    if result is None:
        raise NIRExportError("the traced model has no output")
    return result


def _walk_graph_module(model: Any, builder: _Builder) -> list[str]:
    """Add the nodes of a model read by :func:`snn.nir.load` (re-export)."""
    outs: dict[str, list[str]] = {}
    for key in model.order:
        if key == model.input_name:
            outs[key] = ["input"]
            continue
        sources = [s for p in model.preds[key] for s in outs[p]]
        if key == model.output_name:
            return sources
        outs[key] = builder.leaf(model.node_names[key], model.layers[key], sources, f"layers.{key}")
    raise NIRExportError("the graph module has no output node")


def _refuse_converted(model: nn.Module) -> None:
    """A converted network has no NIR form; name its first neuron layer and why."""
    from snn.converters.network import ConvertedSNN

    if not isinstance(model, ConvertedSNN):
        return
    first = next(iter(model.neurons()), None)
    where = f"layer 'graph.{first}' (IFActivation)" if first else "its IF layers"
    raise NIRExportError(
        f"{where} of the converted network has no NIR node: it integrates x/threshold from a "
        "non-zero initial membrane (v_init), resets by subtraction and emits spikes of "
        "amplitude threshold, and the network repeats its static input at every step and "
        "averages a readout; NIR's IF node has none of these. Run the converted network with "
        "snn (snn energy, Python) or export a spiking model trained with snn train"
    )


def _step_lead(model: nn.Module) -> int:
    modes = {m.step_mode for m in model.modules() if isinstance(m, BaseNeuron)}
    if len(modes) > 1:
        raise NIRExportError(
            "the model mixes single-step and sequence neurons; use snn.set_step_mode(model, ...) "
            "before exporting"
        )
    return 1 if modes == {"single"} else 2


def export(
    model: nn.Module,
    sample_input: Tensor,
    *,
    dt: float = 1.0,
    discretisation: str = "zoh",
    allow_any_reset: bool = False,
) -> nir.NIRGraph:
    r"""Write ``model`` as a NIR graph.

    Neuron parameters follow the exact mapping of :mod:`snn.nir.mapping`: with the default
    ``discretisation="zoh"`` a LIF with decay :math:`\beta` becomes
    :math:`\tau = -\Delta t/\ln\beta`, :math:`R = 1` (``decay_input=True``) or
    :math:`R = 1/(1-\beta)`; use ``discretisation="euler"`` with ``dt=1e-4`` (snnTorch) or
    ``dt=1e-3`` (Norse) for graphs those libraries simulate identically. Every neuron node also
    carries its exact per-step parameters in ``metadata`` (keys ``snn_*``), so
    :func:`snn.nir.load` restores the model bit for bit.

    Args:
        model: a model built from ``nn.Sequential``, :class:`~snn.layers.TimeDistributed`,
            :class:`~snn.nir.Recurrent`, neurons (IF, LIF, ParametricLIF, CubaLIF, LI) and the
            layers of :data:`EXPORTERS`; a custom ``forward`` is traced with ``torch.fx``
            (branches that are added become several edges into one node). A ``forward`` that
            fx cannot trace (e.g. one that checks its input's shape) is read from one run on
            ``sample_input`` instead, as a chain of its layers in call order.
        sample_input: one input, time-first ``[T, B, ...]`` for sequence-mode models, ``[B, ...]``
            for single-step models; used once (on a copy of the model) to find the shapes.
        dt: the simulation step the time constants are expressed in.
        discretisation: ``"zoh"`` (exact) or ``"euler"`` (see
            :data:`snn.nir.mapping.DISCRETISATIONS`).
        allow_any_reset: export neurons with ``reset="subtract"`` or ``"none"`` (the mode is kept
            in metadata; NIR itself, and other simulators, reset to ``v_reset``).

    Returns:
        the graph, with nodes named after the modules, plus ``"input"`` and ``"output"``.

    Raises:
        NIRExportError: for a layer without a NIR node, a parameter that has no NIR value, or an
            operation the tracer cannot express.
        TypeError: for a non-module model or a non-tensor sample.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(sample_input, Tensor):
        raise TypeError(f"sample_input must be a tensor, got {type(sample_input).__name__}")
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt must be positive and finite, got {dt}")
    _refuse_converted(model)
    disc = get_discretisation(discretisation)
    lead = _step_lead(model)
    if sample_input.dim() <= lead:
        raise ValueError(
            f"sample_input must be {'[T, B, ...]' if lead == 2 else '[B, ...]'} for this model, "
            f"got shape {tuple(sample_input.shape)}"
        )
    builder = _Builder(float(dt), disc, allow_any_reset)
    builder.shapes = _record_shapes(model, sample_input, lead)
    in_shape = tuple(sample_input.shape[lead:])
    builder.nodes["input"] = nir.Input(input_type={"input": np.array(in_shape)})
    from snn.nir.load import NIRGraphModule

    if isinstance(model, NIRGraphModule):
        result = _walk_graph_module(model, builder)
    else:
        result = _walk_fx(model, builder, sample_input)
    builder.raise_missing()
    out_shape = builder.out_shapes.get(result[0], in_shape)
    builder.nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    builder.connect(result, "output")
    return nir.NIRGraph(
        nodes=builder.nodes,
        edges=builder.edges,
        metadata={"snn_dt": float(dt), "snn_discretisation": disc.name},
        type_check=False,
    )
