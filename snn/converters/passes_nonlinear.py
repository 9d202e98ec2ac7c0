"""Passes for batch-shape checking and for transformer operations.

- :func:`check_batch` runs the traced graph on two small batches of different sizes and
  names the first operation whose result does not keep one row per sample: a shape baked from
  the calibration batch (``x.view(64, -1)``), a reduction or a layout change over the batch
  dimension, or anything else that mixes samples. The converted network folds time into the
  batch dimension, so such an operation would fail or mix time steps at run time.
- :func:`mark_nonlinear` replaces every non-linear operation (LayerNorm, GELU, SiLU, softmax,
  sigmoid, tanh) and every product of two activations by an
  :class:`~snn.converters.expectation.Expectation` module, and puts a
  :class:`~snn.converters.expectation.SignedSite` (a signed multi-threshold neuron after
  normalisation) on the operands of products and on the outputs that feed synaptic layers, as in
  Huang et al. 2024 (see :mod:`snn.converters.expectation`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, fx

from snn.converters.errors import ConversionError, UnsupportedOperationError
from snn.converters.expectation import Expectation, SignedSite
from snn.converters.graph import classify, dynamic_nodes, node_source, op_label
from snn.converters.modules import ActivationSite
from snn.converters.qcfs import QCFS
from snn.converters.report import LayerReport

__all__ = ["check_batch", "mark_nonlinear"]


class _Capture(fx.Interpreter):
    """Runs the graph and keeps the value of every time-varying node; remembers the node that
    raised, if one did."""

    def __init__(self, gm: fx.GraphModule, dynamic: set[fx.Node]):
        super().__init__(gm)
        self.dynamic = dynamic
        self.values: dict[fx.Node, Any] = {}
        self.failed: fx.Node | None = None

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except Exception:
            self.failed = n
            raise
        if n in self.dynamic and n.op.startswith("call_"):
            self.values[n] = result
        return result


def _tensors(value: Any) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for t in value if isinstance(t, Tensor)]
    return []


def check_batch(ctx: Any) -> None:
    """Check that every time-varying operation keeps one row per sample in dimension 0 and
    treats the samples independently (see the module docstring).

    Raises:
        UnsupportedOperationError: naming the first operation that does not.
        ConversionError: when the model fails on its own calibration batch.
    """
    gm = ctx.graph_module
    if not ctx.calibration:
        raise ConversionError("calibration_data is empty; give at least one batch of inputs")
    full = ctx.calibration[0]
    dynamic = dynamic_nodes(gm.graph)
    with torch.no_grad():
        k = min(full.shape[0], 3)
        small = full[:k]
        runs = []
        for batch in (small, torch.cat([small, full[:1]], 0)):
            cap = _Capture(gm, dynamic)
            try:
                cap.run(batch)
            except Exception as exc:
                try:
                    gm(full)
                except Exception as full_exc:
                    raise ConversionError(f"the model fails on its calibration batch of shape "
                                          f"{tuple(full.shape)}: {full_exc}") from full_exc
                n = cap.failed
                size = batch.shape[0]
                lost = [m for m, v in cap.values.items()
                        if any(size not in t.shape for t in _tensors(v))]
                n = lost[0] if lost else n
                raise UnsupportedOperationError(
                    op_label(n, gm) if n is not None else "model", "it works on the calibration "
                    f"batch of {full.shape[0]} samples but fails on {batch.shape[0]} ({exc}); a "
                    "shape written as a number (like x.view(64, -1)) bakes the calibration "
                    "batch into the graph, while the converted network runs time steps folded "
                    "into the batch: use x.shape[0] or flatten(1)",
                    node=n.name if n is not None else None,
                    source=node_source(n) if n is not None else None) from exc
            runs.append(cap.values)
    a, b = runs
    for node in gm.graph.nodes:
        if node not in a:
            continue
        for x, y in zip(_tensors(a[node]), _tensors(b[node])):
            dims = [d for d in range(x.dim()) if x.shape[d] == k and y.shape[d] == k + 1
                    and x.shape[:d] + x.shape[d + 1:] == y.shape[:d] + y.shape[d + 1:]]
            if not dims:
                raise UnsupportedOperationError(
                    op_label(node, gm), f"its output of shape {tuple(y.shape)} on a batch of "
                    f"{k + 1} samples has no batch dimension (one row per sample); the converted "
                    "network folds time into the batch dimension, so operations must keep it "
                    "(a shape baked from the calibration batch, like x.view(64, -1), or a "
                    "reduction over the batch does not)",
                    node=node.name, source=node_source(node))
            d = dims[0]
            if x.is_floating_point():
                tol = 1e-4 * (1.0 + (float(x.abs().max()) if x.numel() else 0.0))
                if not torch.allclose(x, y.narrow(d, 0, k), rtol=1e-4, atol=tol):
                    raise UnsupportedOperationError(
                        op_label(node, gm), "its output for a sample depends on the other "
                        "samples of the batch (an operation over the batch dimension); the "
                        "converted network folds time into that dimension",
                        node=node.name, source=node_source(node))
            node.meta["batch_dim"] = d
    for node in gm.graph.nodes:
        stateful = node.op == "call_module" or (
            node.op in ("call_function", "call_method") and node in a
            and classify(node, gm, dynamic).kind in ("activation", "maxpool", "nonlinear",
                                                      "product"))
        checked = list(node.all_input_nodes) if stateful else []
        if node.op == "output":
            checked = [n for n in node.all_input_nodes if n in a]
        for arg in checked:
            if arg in a and arg.meta.get("batch_dim", 0) != 0:
                where = "the network's output" if node.op == "output" else op_label(node, gm)
                raise UnsupportedOperationError(
                    op_label(arg, gm), f"it moves the batch to dimension "
                    f"{arg.meta['batch_dim']} and {where} reads it there; layers, activations "
                    "and the output need the batch in dimension 0 (rearrangements in between "
                    "are fine)", node=arg.name, source=node_source(arg))


_LAYOUT_METHODS = {"view", "reshape", "flatten", "unflatten", "transpose", "permute", "swapaxes",
                   "swapdims", "movedim", "chunk", "split", "unbind", "contiguous", "squeeze",
                   "unsqueeze", "expand", "expand_as", "narrow", "clone", "view_as",
                   "reshape_as", "unfold"}
_LAYOUT_FUNCTIONS = {"getitem", "getattr", "transpose", "permute", "swapaxes", "swapdims",
                     "movedim", "chunk", "split", "unbind", "reshape", "flatten", "unflatten",
                     "squeeze", "unsqueeze", "narrow"}


_ELEMENTWISE = {"add", "sub", "mul", "truediv", "div", "neg", "pos", "iadd", "isub", "imul"}


def _is_layout(node: fx.Node) -> bool:
    if node.op == "call_method":
        return str(node.target) in _LAYOUT_METHODS
    if node.op == "call_function":
        return getattr(node.target, "__name__", "") in _LAYOUT_FUNCTIONS
    return False


def _spikes_at(node: Any, gm: fx.GraphModule) -> bool:
    """Whether ``node`` is (a rearrangement of) the output of a neuron site."""
    while isinstance(node, fx.Node):
        if node.op == "call_module":
            return isinstance(gm.get_submodule(node.target), (ActivationSite, QCFS, SignedSite))
        if not _is_layout(node):
            return False
        node = node.args[0]
    return False


def _needs_spikes(node: fx.Node, ecm: set[fx.Node], dynamic: set[fx.Node],
                  seen: set[fx.Node] | None = None) -> bool:
    """Whether the value of ``node`` reaches a synaptic layer (a module, or any operation
    other than expectation modules and single-input elementwise or layout operations) before
    it reaches an expectation module or the output."""
    seen = set() if seen is None else seen
    for user in node.users:
        if user in seen:
            continue
        seen.add(user)
        if user in ecm or user.op == "output":
            continue
        operands = [a for a in user.all_input_nodes if a in dynamic]
        name = (str(user.target) if user.op == "call_method"
                else getattr(user.target, "__name__", ""))
        passthrough = len(operands) <= 1 and (_is_layout(user) or (
            user.op in ("call_function", "call_method") and name in _ELEMENTWISE))
        if not passthrough or _needs_spikes(user, ecm, dynamic, seen):
            return True
    return False


def _fresh_name(gm: fx.GraphModule, base: str) -> str:
    base = base.replace(".", "_")
    name, i = base, 1
    while hasattr(gm, name):
        name, i = f"{base}_{i}", i + 1
    return name


_METHOD = "expectation compensation (Huang et al. 2024)"


def mark_nonlinear(ctx: Any) -> None:
    """Expectation modules for non-linear operations and products; signed-neuron sites on the
    operands of products and on outputs that feed synaptic layers (see the module docstring).
    Does nothing when ``config.nonlinear`` is ``None`` (those operations were refused by
    ``check_supported``)."""
    if ctx.config.nonlinear is None:
        return
    gm = ctx.graph_module
    graph = gm.graph
    dynamic = dynamic_nodes(graph)
    counts: dict[str, int] = {}
    for n in graph.nodes:
        if n.op == "call_module":
            counts[n.target] = counts.get(n.target, 0) + 1
    made: dict[fx.Node, str] = {}
    for node in list(graph.nodes):
        if node.op not in ("call_module", "call_function", "call_method") or node not in dynamic:
            continue
        info = classify(node, gm, dynamic)
        if info.kind not in ("nonlinear", "product"):
            continue
        source = node_source(node)
        if any(isinstance(v, fx.Node) and v in dynamic for v in node.kwargs.values()):
            raise UnsupportedOperationError(
                info.label, "pass its time-varying inputs as positional arguments",
                node=node.name, source=source)
        positions = [i for i, a in enumerate(node.args) if isinstance(a, fx.Node) and a in dynamic]
        if node.op == "call_module":
            fn: Any = gm.get_submodule(node.target)
            name = (node.target if counts[node.target] == 1
                    else _fresh_name(gm, f"{node.target}_{node.name}"))
        else:
            fn = node.target
            name = _fresh_name(gm, node.name)
        module = Expectation(fn, positions, info.label)
        if node.op == "call_module" and name == node.target:
            parent, _, attr = name.rpartition(".")
            setattr(gm.get_submodule(parent) if parent else gm, attr, module)
        else:
            gm.add_submodule(name, module)
        with graph.inserting_before(node):
            new = graph.call_module(name, node.args, dict(node.kwargs))
        new.meta = dict(node.meta)
        new.meta["op"], new.meta["source"] = info.label, source
        new.meta["kind"] = info.kind
        node.replace_all_uses_with(new)
        graph.erase_node(node)
        dynamic.add(new)
        made[new] = name
        ctx.report.layers.append(LayerReport(name, info.label, _METHOD, source))
    ecm = set(made)
    sites: dict[fx.Node, fx.Node] = {}

    def site_for(value: fx.Node, label: str, source: str | None, after: bool) -> fx.Node:
        if value in sites:
            return sites[value]
        site_name = _fresh_name(gm, f"{value.name}_spikes")
        gm.add_submodule(site_name, SignedSite(label, source))
        with graph.inserting_after(value):
            site = graph.call_module(site_name, (value,))
        site.meta = {"op": f"signed neuron {'after' if after else 'before'} {label}",
                     "source": source}
        dynamic.add(site)
        sites[value] = site
        return site

    for node in made:
        label, source = node.meta["op"], node.meta.get("source")
        if _needs_spikes(node, ecm, dynamic):
            site = site_for(node, label, source, after=True)
            node.replace_all_uses_with(site, delete_user_cb=lambda u, s=site: u is not s)
    for node in made:
        if node.meta["kind"] != "product":
            continue
        label, source = node.meta["op"], node.meta.get("source")
        for i, arg in enumerate(node.args):
            if isinstance(arg, fx.Node) and arg in dynamic and not _spikes_at(arg, gm):
                node.update_arg(i, site_for(arg, label, source, after=False))
    gm.delete_all_unused_submodules()
    graph.lint()
    gm.recompile()
