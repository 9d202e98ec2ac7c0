"""The conversion pipeline: named passes over a :class:`ConversionContext`.

Each pass is a function ``fn(ctx) -> None`` that reads and updates the context (the graph
module, statistics, thresholds, report). :func:`default_passes` lists them in order; a user can
inspect the context after any pass or insert their own::

    passes = default_passes()
    passes.insert(3, ConversionPass("my_pass", my_fn))
    snn_model, report = convert(model, data, passes=passes)
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from snn.converters.errors import ConversionError, UnsupportedOperationError
from snn.converters.expectation import Expectation, SignedIFActivation, SignedSite
from snn.converters.graph import (
    FUNCTION_KINDS,
    MODULE_KINDS,
    classify,
    clip_bounds,
    dynamic_nodes,
    node_source,
    op_label,
    trace,
)
from snn.converters.modules import (
    ActivationSite,
    ChannelAffine,
    IFActivation,
    ResidualAdd,
    SpikingMaxPool,
)
from snn.converters.normalization import NORMALIZERS, scale_of
from snn.converters.qcfs import QCFS
from snn.converters.report import ConversionReport, LayerReport

__all__ = [
    "ConversionConfig",
    "ConversionContext",
    "ConversionPass",
    "check_supported",
    "collect_statistics",
    "default_passes",
    "fold_batchnorm",
    "mark_activations",
    "normalise",
    "remove_identities",
    "replace_activations",
    "trace_model",
]


@dataclass(frozen=True)
class ConversionConfig:
    """Options of a conversion (see :func:`snn.converters.convert`)."""

    method: str = "percentile"
    percentile: float = 99.9
    channelwise: bool = False
    v_init: float = 0.5
    steps: int = 32
    encoding: str = "direct"
    time_chunk: int = 8
    calibration: str | None = None
    calibration_steps: int | None = None
    nonlinear: str | None = "expectation"
    signed_levels: int = 4

    def __post_init__(self) -> None:
        if self.nonlinear not in (None, "expectation"):
            raise ValueError(f"nonlinear must be 'expectation' or None, got {self.nonlinear!r}")
        if (isinstance(self.signed_levels, bool) or not isinstance(self.signed_levels, int)
                or self.signed_levels < 1):
            raise ValueError(f"signed_levels must be a positive integer, got "
                             f"{self.signed_levels!r}")
        if self.method not in NORMALIZERS:
            raise ValueError(f"method must be one of {sorted(NORMALIZERS)}, got {self.method!r}")
        if not 0.0 < self.percentile <= 100.0:
            raise ValueError(f"percentile must lie in (0, 100], got {self.percentile}")
        if not 0.0 <= self.v_init <= 1.0:
            raise ValueError(f"v_init is a fraction of the threshold in [0, 1], got {self.v_init}")


@dataclass
class ConversionContext:
    """Everything the passes share.

    Attributes:
        model: the user's model (never modified).
        calibration: calibration input batches ``[B, ...]``.
        config: the options.
        gm: the graph module being transformed (after ``trace``).
        activations: per activation module name, its calibration outputs and output rank.
        thresholds: per activation module name, the neuron settings chosen by ``normalise``.
        report: the report being written.
        network: the result (after ``build_network``).
    """

    model: nn.Module
    calibration: list[Tensor]
    config: ConversionConfig
    gm: fx.GraphModule | None = None
    activations: dict[str, dict[str, Any]] = field(default_factory=dict)
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: ConversionReport = field(default_factory=ConversionReport)
    network: nn.Module | None = None

    @property
    def graph_module(self) -> fx.GraphModule:
        """The graph module; raises if the model has not been traced yet."""
        if self.gm is None:
            raise ConversionError("the model has not been traced yet (run the 'trace' pass)")
        return self.gm


@dataclass(frozen=True)
class ConversionPass:
    """A named step of the pipeline: ``run(ctx)`` updates the context in place."""

    name: str
    run: Callable[[ConversionContext], None]


# -- helpers --------------------------------------------------------------------------------
def _set_module(gm: fx.GraphModule, target: str, module: nn.Module) -> None:
    parent_name, _, attr = target.rpartition(".")
    parent = gm.get_submodule(parent_name) if parent_name else gm
    setattr(parent, attr, module)


def _fresh_name(gm: fx.GraphModule, base: str) -> str:
    name, i = base, 1
    while hasattr(gm, name):
        name, i = f"{base}_{i}", i + 1
    return name


def _finish(gm: fx.GraphModule) -> None:
    # no dead-code elimination: it would drop in-place activations whose result is unused
    gm.delete_all_unused_submodules()
    gm.graph.lint()
    gm.recompile()


def _module_users(gm: fx.GraphModule) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in gm.graph.nodes:
        if n.op == "call_module":
            counts[n.target] = counts.get(n.target, 0) + 1
    return counts


# -- passes ---------------------------------------------------------------------------------
def trace_model(ctx: ConversionContext) -> None:
    """Trace a copy of the model (in eval mode) into a ``torch.fx`` graph, with every
    ``nn.MultiheadAttention`` written out as its operations
    (:func:`~snn.converters.attention.decompose_attention`)."""
    from snn.converters.attention import decompose_attention

    model = decompose_attention(copy.deepcopy(ctx.model).eval())
    ctx.gm = trace(model)
    placeholders = [n for n in ctx.gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ConversionError(
            f"the model's forward must take exactly one input tensor, got {len(placeholders)} "
            f"inputs ({[n.name for n in placeholders]})"
        )
    outputs = [n for n in ctx.gm.graph.nodes if n.op == "output"]
    if not isinstance(outputs[0].args[0], fx.Node):
        raise ConversionError("the model must return a single tensor (not a tuple or dict)")


def check_supported(ctx: ConversionContext) -> None:
    """Classify every node; raise :class:`UnsupportedOperationError` for anything with no
    spiking counterpart."""
    gm = ctx.graph_module
    dynamic = dynamic_nodes(gm.graph)
    for node in gm.graph.nodes:
        classify(node, gm, dynamic, nonlinear=ctx.config.nonlinear is not None)


_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _bn_scale_shift(bn: nn.modules.batchnorm._BatchNorm) -> tuple[Tensor, Tensor]:
    var = bn.running_var.double()
    mean = bn.running_mean.double()
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    return scale, beta - mean * scale


def fold_bn_into(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    r"""A copy of the Conv/Linear ``layer`` with the inference-mode BatchNorm ``bn`` folded in:

    .. math:: W' = W\,\frac{\gamma}{\sqrt{\sigma^2+\epsilon}}, \qquad
              b' = (b - \mu)\frac{\gamma}{\sqrt{\sigma^2+\epsilon}} + \beta

    per output channel, computed in float64.
    """
    scale, shift = _bn_scale_shift(bn)
    fused = copy.deepcopy(layer)
    w, b = folded_affine(fused, scale, shift)
    fused.weight = nn.Parameter(w)
    fused.bias = nn.Parameter(b)
    return fused


def folded_affine(layer: nn.Module, scale: Tensor, shift: Tensor) -> tuple[Tensor, Tensor]:
    r"""The weight and bias of the Conv/Linear ``layer`` followed by the per-output-channel map
    ``y * scale + shift``: :math:`W' = W \cdot scale`, :math:`b' = b \cdot scale + shift`,
    computed in float64 and returned in the layer's dtype (a missing bias counts as zero)."""
    w = layer.weight.detach().double()
    w = w * scale.view(-1, *([1] * (w.dim() - 1)))
    b = layer.bias.detach().double() if layer.bias is not None else torch.zeros_like(scale)
    b = b * scale + shift
    dtype = layer.weight.dtype
    return w.to(dtype), b.to(dtype)


def fold_batchnorm(ctx: ConversionContext) -> None:
    """Fold every BatchNorm into the Conv/Linear before it (exact); a BatchNorm with no such
    layer (or after a layer used twice) becomes a fixed per-channel affine map."""
    gm = ctx.graph_module
    uses = _module_users(gm)
    for node in list(gm.graph.nodes):
        if node.op != "call_module":
            continue
        bn = gm.get_submodule(node.target)
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
            continue
        prev = node.args[0]
        label = op_label(node, gm)
        foldable = (
            isinstance(prev, fx.Node) and prev.op == "call_module"
            and isinstance(gm.get_submodule(prev.target), _FOLDABLE)
            and len(prev.users) == 1 and uses.get(prev.target, 0) == 1
        )
        if foldable:
            layer = gm.get_submodule(prev.target)
            if layer.weight.shape[0] != bn.num_features:
                raise ConversionError(f"{node.target}: BatchNorm over {bn.num_features} channels "
                                      f"follows {prev.target} with {layer.weight.shape[0]}")
            _set_module(gm, prev.target, fold_bn_into(layer, bn))
            node.replace_all_uses_with(prev)
            gm.graph.erase_node(node)
            action = f"folded into {prev.target}"
        else:
            scale, shift = _bn_scale_shift(bn)
            dtype = bn.running_var.dtype
            _set_module(gm, node.target, ChannelAffine(scale.to(dtype), shift.to(dtype)))
            action = "per-channel affine (no Conv/Linear to fold into)"
        ctx.report.layers.append(LayerReport(node.target, label, action, node_source(node)))
    _finish(gm)


_DROPOUT_FUNCTIONS = {t for t, k in FUNCTION_KINDS.items() if k == "dropout"}


def remove_identities(ctx: ConversionContext) -> None:
    """Remove Dropout (modules and functions) and ``nn.Identity``: identities at inference."""
    gm = ctx.graph_module
    for node in list(gm.graph.nodes):
        if node.op == "call_module":
            kind = MODULE_KINDS.get(type(gm.get_submodule(node.target)))
            remove = kind in ("dropout", "identity")
        else:
            remove = node.op == "call_function" and node.target in _DROPOUT_FUNCTIONS
        if remove:
            ctx.report.layers.append(
                LayerReport(node.name, op_label(node, gm), "removed", node_source(node))
            )
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
    _finish(gm)


_INPLACE = {"relu_", "clamp_", "clamp_min_", F.relu_, torch.relu_}


def _is_inplace(node: fx.Node, gm: fx.GraphModule) -> bool:
    if node.target in _INPLACE:
        return True
    if node.op == "call_module":
        return bool(getattr(gm.get_submodule(node.target), "inplace", False))
    return bool(node.kwargs.get("inplace", False))


def mark_activations(ctx: ConversionContext) -> None:
    """Turn every ReLU-style activation (module, ``F.relu``, ``torch.relu``, ``Tensor.relu``,
    ReLU6, Hardtanh(0, a), clamp(0, a)) into an :class:`ActivationSite` of its own (a QCFS
    module stays), the places where statistics are collected. A module called once keeps its
    name; each further call site of a shared module, and each functional call, gets a module
    named after its graph node."""
    gm = ctx.graph_module
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    dynamic = dynamic_nodes(gm.graph)
    found = []
    for node in gm.graph.nodes:
        if (node.op in ("call_module", "call_function", "call_method")
                and classify(node, gm, dynamic).kind == "activation"):
            qcfs = node.op == "call_module" and isinstance(gm.get_submodule(node.target), QCFS)
            found.append((node, op_label(node, gm), node_source(node), clip_bounds(node, gm)[1],
                          gm.get_submodule(node.target) if qcfs else None))
    taken: set[str] = set()
    for node, label, source, upper, qcfs in found:
        module = qcfs if qcfs is not None else ActivationSite(upper, label, source)
        x = node.args[0]
        inplace = _is_inplace(node, gm)
        if node.op == "call_module" and node.target not in taken:
            taken.add(node.target)
            _set_module(gm, node.target, module)
            site = node
        else:
            name = _fresh_name(gm, node.name)
            gm.add_submodule(name, module)
            with gm.graph.inserting_before(node):
                site = gm.graph.call_module(name, (x,))
            site.meta = dict(node.meta)
            node.replace_all_uses_with(site)
            gm.graph.erase_node(node)
            order[site] = order[node]
        site.meta["op"], site.meta["source"] = label, source
        if inplace:
            # later readers of the in-place activation's input saw the activated value
            pos = order[site]
            x.replace_all_uses_with(site, delete_user_cb=lambda u, p=pos: order.get(u, -1) > p)
    _finish(gm)


class _Recorder(fx.Interpreter):
    """Runs the graph, keeping the outputs of the activation nodes and checking that every
    time-varying tensor keeps the batch in dimension 0 (the converted network folds time into
    it)."""

    def __init__(self, gm: fx.GraphModule, sites: set[str], dynamic: set[fx.Node]):
        super().__init__(gm)
        self.sites = sites
        self.dynamic = dynamic
        self.batch = 0
        self.outputs: dict[str, Tensor] = {}

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        if n.op == "placeholder":
            self.batch = result.shape[0]
        elif (n.op == "call_module" and n in self.dynamic and isinstance(result, Tensor)
              and (result.dim() == 0 or result.shape[0] != self.batch)):
            raise UnsupportedOperationError(
                op_label(n, self.module), f"its output of shape {tuple(result.shape)} does not "
                f"keep the batch ({self.batch}) in dimension 0; the converted network folds "
                "time into the batch dimension, so operations must not mix it",
                node=n.name, source=node_source(n))
        if n.op == "call_module" and n.target in self.sites:
            self.outputs[n.target] = result.detach()
        return result


def _site_nodes(gm: fx.GraphModule) -> list[fx.Node]:
    return [n for n in gm.graph.nodes if n.op == "call_module"
            and isinstance(gm.get_submodule(n.target), (ActivationSite, QCFS, SignedSite))]


def collect_statistics(ctx: ConversionContext) -> None:
    """Run the ANN on the calibration batches; keep every activation's outputs."""
    gm = ctx.graph_module
    if not ctx.calibration:
        raise ConversionError("calibration_data is empty; give at least one batch of inputs")
    sites = {n.target: n for n in _site_nodes(gm)}
    dynamic = dynamic_nodes(gm.graph)
    chunks: dict[str, list[Tensor]] = {name: [] for name in sites}
    ranks: dict[str, tuple[int, ...]] = {}
    with torch.no_grad():
        for batch in ctx.calibration:
            rec = _Recorder(gm, set(sites), dynamic)
            rec.run(batch)
            for name, out in rec.outputs.items():
                ranks[name] = tuple(out.shape[1:])
                if out.dim() >= 2:  # [C, everything else]
                    chunks[name].append(out.transpose(0, 1).reshape(out.shape[1], -1).cpu())
                else:
                    chunks[name].append(out.reshape(1, -1).cpu())
    for name in sites:
        values = torch.cat(chunks[name], 1)
        ctx.activations[name] = {"values": values, "shape": ranks[name]}


def _param_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if not shape:
        return ()
    return (shape[0],) + (1,) * (len(shape) - 1)


def normalise(ctx: ConversionContext) -> None:
    """Choose every neuron's threshold: the activation's scale by the normalisation method
    (layer-wise or per channel), or the trained threshold of a QCFS activation (with the
    initial membrane at its shift, half the threshold by default)."""
    gm = ctx.graph_module
    cfg = ctx.config
    for node in _site_nodes(gm):
        module = gm.get_submodule(node.target)
        data = ctx.activations[node.target]
        values, shape = data["values"], data["shape"]
        pshape = _param_shape(shape)
        stats = {"max": float(values.max()), "active_fraction": float((values > 0).float().mean())}
        if isinstance(module, SignedSite):
            scale = scale_of(values.abs(), cfg.method, cfg.percentile)
            if scale is None:
                scale = 1.0
                ctx.report.notes.append(f"{node.target} is zero on the calibration data; "
                                        "threshold set to 1")
            threshold = torch.tensor(scale)
            entry = {"threshold": threshold, "signed": True, "levels": cfg.signed_levels}
            v_frac = 0.0
            action = f"signed multi-threshold neuron ({cfg.signed_levels} threshold pairs)"
            stats["scale"] = scale
            stats["active_fraction"] = float((values != 0).float().mean())
            stats["max"] = float(values.abs().max())
        elif isinstance(module, QCFS):
            theta = float(module.threshold.detach())
            if not (theta > 0 and math.isfinite(theta)):
                raise ConversionError(
                    f"{node.target}: QCFS threshold must be positive, got {theta}")
            threshold = torch.tensor(theta)
            entry = {"threshold": threshold, "v_init": module.shift * threshold,
                     "levels": module.levels, "shift": module.shift}
            v_frac = module.shift
            action = f"IF neuron (QCFS, {module.levels} levels)"
        else:
            layer = scale_of(values, cfg.method, cfg.percentile)
            if layer is None:
                layer = 1.0
                ctx.report.notes.append(f"{node.target} never activates on the calibration data; "
                                        "threshold set to 1")
            if cfg.channelwise and pshape:
                per = [scale_of(values[c], cfg.method, cfg.percentile) for c in range(len(values))]
                threshold = torch.tensor([layer if s is None else s for s in per])
                threshold = threshold.reshape(pshape)
            else:
                threshold = torch.tensor(layer)
            threshold = torch.clamp(threshold, max=module.upper)
            entry = {"threshold": threshold, "v_init": cfg.v_init * threshold,
                     "levels": None, "shift": 0.5}
            v_frac = cfg.v_init
            action = "IF neuron"
            stats["scale"] = layer
        entry["param_shape"] = pshape
        ctx.thresholds[node.target] = entry
        th = entry["threshold"]
        ctx.report.layers.append(LayerReport(
            node.target, node.meta.get("op", op_label(node, gm)), action,
            node.meta.get("source"),
            threshold=float(th) if th.dim() == 0 else th.reshape(-1).tolist(),
            v_init=v_frac, stats=stats))


def _pool_module(node: fx.Node, gm: fx.GraphModule) -> nn.Module:
    if node.op == "call_module":
        return gm.get_submodule(node.target)
    fn = node.target
    name = fn.__name__ if hasattr(fn, "__name__") else str(fn)
    dims = {"1d": 1, "2d": 2, "3d": 3}[name[-2:]]
    args, kwargs = list(node.args[1:]), dict(node.kwargs)
    if "adaptive" in name:
        params = dict(zip(["output_size", "return_indices"], args)) | kwargs
        params.pop("return_indices", None)
        cls = {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}[dims]
    else:
        keys = ["kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"]
        params = dict(zip(keys, args)) | kwargs
        if params.pop("return_indices", False):
            raise UnsupportedOperationError(op_label(node, gm), "return_indices=True",
                                            node.name, node_source(node))
        cls = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[dims]
    return cls(**params)


_ADDITIONS = {operator.add: "add", torch.add: "add", operator.sub: "sub", torch.sub: "sub"}


def _addition(node: fx.Node, dynamic: set[fx.Node]) -> str | None:
    """``"add"``/``"sub"`` for an addition or subtraction whose value varies with the input."""
    if node not in dynamic:
        return None
    if node.op == "call_function":
        return _ADDITIONS.get(node.target)
    if node.op == "call_method" and node.target in ("add", "sub"):
        return str(node.target)
    return None


_FOLDED_SCALES = MappingProxyType({
    name: "scaling by a constant: every operation between two neuron layers of a converted "
    "network is linear, so it folds into the next layer's weights or neuron threshold"
    for name in ("mul", "truediv", "div", "neg")
})
"""Graph-level functions the energy counter treats as folded (``folded_functions``): what is
left of them after conversion is scaling by constants (products of two activations became
:class:`~snn.converters.expectation.Expectation` modules)."""


def replace_activations(ctx: ConversionContext) -> None:
    """Replace every activation by an :class:`IFActivation` (reset by subtraction) and every max
    pooling by a :class:`SpikingMaxPool`; thread the number of steps through the graph. Every
    addition or subtraction of time-varying values (residual additions) becomes a
    :class:`ResidualAdd` module, which computes the same and lets the energy counter price it;
    the remaining scalings by constants are declared folded for the counter
    (``folded_functions``)."""
    gm = ctx.graph_module
    graph = gm.graph
    x = next(n for n in graph.nodes if n.op == "placeholder")
    with graph.inserting_after(x):
        steps = graph.placeholder("steps", default_value=None)
    dynamic = dynamic_nodes(graph)
    uses = _module_users(gm)
    for node in list(graph.nodes):
        if node.op not in ("call_module", "call_function", "call_method"):
            continue
        add = _addition(node, dynamic)
        if add is not None:
            name = _fresh_name(gm, node.name)
            gm.add_submodule(name, ResidualAdd(add))
            with graph.inserting_before(node):
                new = graph.call_module(name, node.args, dict(node.kwargs))
            new.meta = dict(node.meta)
            node.replace_all_uses_with(new)
            graph.erase_node(node)
            continue
        label = node.meta.get("op") or op_label(node, gm)
        if node.op == "call_module" and isinstance(gm.get_submodule(node.target), Expectation):
            node.kwargs = {**node.kwargs, "steps": steps}
            continue
        if node.op == "call_module" and node.target in ctx.thresholds:
            t = ctx.thresholds[node.target]
            if t.get("signed"):
                module: nn.Module = SignedIFActivation(t["threshold"], t["levels"])
            else:
                module = IFActivation(t["threshold"], t["param_shape"], t["v_init"],
                                      t["levels"], t["shift"])
        elif classify(node, gm, dynamic).kind == "maxpool":
            module = SpikingMaxPool(_pool_module(node, gm))
        else:
            continue
        in_place = node.op == "call_module" and uses[node.target] == 1
        name = node.target if in_place else _fresh_name(gm, node.name)
        if isinstance(module, SpikingMaxPool):
            ctx.report.layers.append(LayerReport(
                name, label, "spiking max pool (running-count maximum)", node_source(node)))
        if in_place:
            _set_module(gm, node.target, module)  # stateful: one module per node
            node.args = (node.args[0], steps)
            continue
        gm.add_submodule(name, module)
        with graph.inserting_before(node):
            new = graph.call_module(name, (node.args[0], steps))
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        graph.erase_node(node)
    folded = dict(_FOLDED_SCALES)  # an instance copy: picklable
    gm.folded_functions = folded
    # kept by GraphModule.__deepcopy__, which rebuilds the module from its graph
    gm.meta.setdefault("_user_preserved_attributes", {})["folded_functions"] = folded
    _finish(gm)


def build_network(ctx: ConversionContext) -> None:
    """Wrap the graph in a :class:`ConvertedSNN` with its encoder and readout."""
    from snn.converters.network import ConvertedSNN

    cfg = ctx.config
    ctx.network = ConvertedSNN(ctx.graph_module, steps=cfg.steps, encoding=cfg.encoding,
                               time_chunk=cfg.time_chunk)


def calibrate_network(ctx: ConversionContext) -> None:
    """Post-conversion calibration (when ``config.calibration`` is set): see
    :func:`snn.converters.calibrate`."""
    if ctx.config.calibration is None:
        return
    from snn.converters.calibration import calibrate

    steps = ctx.config.calibration_steps or ctx.config.steps
    calibrate(ctx.network, ctx.calibration, steps=steps, mode=ctx.config.calibration)


def default_passes() -> list[ConversionPass]:
    """The standard pipeline, in order."""
    from snn.converters.passes_nonlinear import check_batch, mark_nonlinear

    return [
        ConversionPass("trace", trace_model),
        ConversionPass("check_supported", check_supported),
        ConversionPass("check_batch", check_batch),
        ConversionPass("fold_batchnorm", fold_batchnorm),
        ConversionPass("remove_identities", remove_identities),
        ConversionPass("mark_activations", mark_activations),
        ConversionPass("mark_nonlinear", mark_nonlinear),
        ConversionPass("collect_statistics", collect_statistics),
        ConversionPass("normalise", normalise),
        ConversionPass("replace_activations", replace_activations),
        ConversionPass("build_network", build_network),
        ConversionPass("calibrate", calibrate_network),
    ]
