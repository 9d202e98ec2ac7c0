"""Tracing and classification of the nodes of a traced graph.

Every node is put in one category of the op table (:mod:`snn.converters.ops`); anything else
raises :class:`~snn.converters.UnsupportedOperationError` naming the operation and the source
line that produced it.
"""

from __future__ import annotations

import math
import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from snn.converters.errors import UnsupportedOperationError
from snn.converters.modules import ActivationSite
from snn.converters.ops import FUNCTION_KINDS, METHOD_KINDS, MODULE_KINDS, REASONS

__all__ = [
    "FUNCTION_KINDS",
    "METHOD_KINDS",
    "MODULE_KINDS",
    "OpInfo",
    "classify",
    "dynamic_nodes",
    "node_source",
    "op_label",
    "trace",
]

_TORCH_DIR = str(Path(torch.__file__).parent)
_OWN_DIR = str(Path(__file__).parent)

@dataclass(frozen=True)
class OpInfo:
    """A classified node: its ``kind`` (see the module docstring) and a readable ``label``."""

    kind: str
    label: str


class _Tracer(fx.Tracer):
    """``torch.fx`` tracer keeping the stack trace of every node, with the converter's own
    modules as leaves."""

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if type(m) in MODULE_KINDS:
            return True
        return super().is_leaf_module(m, module_qualified_name)


def _user_frame(frames: list[tuple[str, int, str]]) -> str | None:
    """``file:line: code`` of the innermost frame outside torch and the converter."""
    for filename, lineno, line in reversed(frames):
        if filename.startswith(_TORCH_DIR) or filename.startswith(_OWN_DIR):
            continue
        return f"{filename}:{lineno}: {line.strip()}" if line else f"{filename}:{lineno}"
    return None


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in [^\n]*\n(?P<code>[^\n]*)')


def node_source(node: fx.Node) -> str | None:
    """The model source line that produced ``node`` (``file:line: code``), when recorded."""
    text = node.stack_trace or node.meta.get("stack_trace")
    if not text:
        return None
    frames = [(m["file"], int(m["line"]), m["code"]) for m in _FRAME.finditer(text)]
    return _user_frame(frames)


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolically trace ``model`` (a copy should be passed; the graph shares its modules).

    Raises:
        UnsupportedOperationError: for data-dependent control flow or any other construct the
            tracer cannot follow, naming the source line.
    """
    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # the tracer raises many types; report the user's line
        frames = [(f.filename, f.lineno or 0, f.line or "") for f in
                  traceback.extract_tb(exc.__traceback__)]
        source = _user_frame(frames)
        if isinstance(exc, UnsupportedOperationError):  # raised by a module while traced
            raise UnsupportedOperationError(exc.op, exc.reason, source=source) from exc
        if isinstance(exc, fx.proxy.TraceError) and "control flow" in str(exc):
            op, reason = "data-dependent control flow", (
                "a branch or loop that depends on tensor values cannot be traced into a fixed "
                "graph; compute both paths, or move the decision out of forward()"
            )
        else:
            op, reason = "model tracing", f"torch.fx could not trace the model ({exc})"
        raise UnsupportedOperationError(op, reason, source=source) from exc
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


def op_label(node: fx.Node, gm: fx.GraphModule) -> str:
    """A readable name of the operation of ``node`` (``nn.Conv2d``, ``F.relu``, ...)."""
    if node.op == "call_module":
        cls = type(gm.get_submodule(node.target))
        prefix = "nn." if cls.__module__.startswith("torch.nn") else f"{cls.__module__}."
        return f"{prefix}{cls.__name__}"
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "call_function":
        target = node.target
        mod = getattr(target, "__module__", None) or ""
        name = getattr(target, "__name__", repr(target))
        if mod.startswith("torch.nn.functional") or getattr(F, name, None) is target:
            return f"F.{name}"
        if mod in ("_operator", "operator"):
            return f"operator.{name}"
        if mod.startswith("torch"):
            return f"torch.{name}"
        return f"{mod}.{name}" if mod else name
    return node.op


_SHAPE_SOURCES = {("call_method", "size"), ("call_method", "dim")}


def _is_shape_source(node: fx.Node) -> bool:
    if (node.op, node.target) in _SHAPE_SOURCES:
        return True
    return (node.op == "call_function" and node.target is getattr and len(node.args) > 1
            and node.args[1] in ("shape", "ndim"))


def dynamic_nodes(graph: fx.Graph) -> set[fx.Node]:
    """Nodes whose value depends on the network input (the rest are constants).

    Shapes (``x.shape``, ``x.size()``, ``x.dim()`` and arithmetic on them) are not counted as
    time-varying: they are computed on the folded ``[steps*B, ...]`` tensors at run time, so
    ``x.reshape(x.shape[0], -1)`` and ``D // heads`` work unchanged.
    """
    dynamic: set[fx.Node] = set()
    shapes: set[fx.Node] = set()
    for node in graph.nodes:
        inputs = node.all_input_nodes
        if node.op == "placeholder":
            dynamic.add(node)
        elif node.op != "get_attr" and any(n in dynamic for n in inputs):
            if _is_shape_source(node):
                shapes.add(node)
            else:
                dynamic.add(node)
        elif (node.op == "call_function" and any(n in shapes for n in inputs)
              and getattr(node.target, "__module__", "") in ("_operator", "operator")):
            shapes.add(node)
    return dynamic


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def clip_bounds(node: fx.Node, gm: fx.GraphModule) -> tuple[float | None, float | None]:
    """``(lower, upper)`` of a ReLU-style activation node (``None``: unbounded / unknown)."""
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        if isinstance(m, nn.ReLU6):
            return 0.0, 6.0
        if isinstance(m, nn.Hardtanh):
            return float(m.min_val), float(m.max_val)
        if isinstance(m, ActivationSite):
            return 0.0, m.upper
        return 0.0, math.inf  # nn.ReLU, QCFS
    target = node.target
    args, kwargs = list(node.args[1:]), dict(node.kwargs)
    if target in (F.relu, F.relu_, torch.relu, torch.relu_, "relu", "relu_"):
        return 0.0, math.inf
    if target is F.relu6:
        return 0.0, 6.0
    if target is F.hardtanh:
        names = ["min_val", "max_val"]
        default: list[Any] = [-1.0, 1.0]
    elif target in (torch.clamp_min, "clamp_min", "clamp_min_"):
        names, default = ["min"], [None]
    else:  # clamp / clip
        names, default = ["min", "max"], [None, None]
    values = dict(zip(names, default))
    values.update(zip(names, args))
    values.update({k: v for k, v in kwargs.items() if k in values})
    lower = values.get("min", values.get("min_val"))
    upper = values.get("max", values.get("max_val"))
    lower = float(lower) if _is_number(lower) else (None if lower is None else math.nan)
    upper = math.inf if upper is None else (float(upper) if _is_number(upper) else math.nan)
    return lower, upper


def classify(node: fx.Node, gm: fx.GraphModule, dynamic: set[fx.Node],
             nonlinear: bool = True) -> OpInfo:
    """Category of ``node``; ``nonlinear=False`` refuses the ``nonlinear`` and ``product``
    categories (a conversion without expectation compensation).

    Raises:
        UnsupportedOperationError: when the operation has no spiking counterpart.
    """
    if node.op in ("placeholder", "output", "get_attr"):
        return OpInfo(node.op, node.op)
    label = op_label(node, gm)
    if node not in dynamic:
        return OpInfo("constant", label)  # computed at run time like in the ANN

    def fail(reason: str) -> UnsupportedOperationError:
        return UnsupportedOperationError(label, reason, node=node.name, source=node_source(node))

    if node.op == "call_module":
        module = gm.get_submodule(node.target)
        kind = MODULE_KINDS.get(type(module))
        if kind is None:
            name = type(module).__name__
            raise fail(REASONS.get(name, "no spiking counterpart is known for this layer"))
        if kind == "maxpool" and getattr(module, "return_indices", False):
            raise fail("max pooling with return_indices=True cannot be converted")
        if kind == "batchnorm" and module.running_mean is None:
            raise fail("BatchNorm without running statistics normalises by the batch at "
                       "inference; it cannot be folded")
    elif node.op == "call_function":
        kind = FUNCTION_KINDS.get(node.target)
        if kind is None:
            name = getattr(node.target, "__name__", "")
            raise fail(REASONS.get(name, "no spiking counterpart is known for this function"))
    else:
        kind = METHOD_KINDS.get(str(node.target))
        if kind is None:
            raise fail("no spiking counterpart is known for this tensor method")
    operands = [a for a in (*node.args, *node.kwargs.values())
                if isinstance(a, fx.Node) and a in dynamic]
    if kind == "scale":
        if len(node.args) > 1 and node.args[-1] in dynamic and label.endswith(("truediv", "div")):
            raise fail("it divides by another activation; only products of two activations "
                       "have a spiking counterpart (expectation compensation)")
        kind = "product" if len(operands) > 1 else "affine"
    elif kind == "product" and len(operands) <= 1:
        kind = "affine"
    if kind in ("nonlinear", "product") and not nonlinear:
        name = (type(gm.get_submodule(node.target)).__name__ if node.op == "call_module"
                else getattr(node.target, "__name__", str(node.target)))
        default = ("it multiplies two activations, and time-averaged spike trains do not "
                   "multiply; convert with nonlinear='expectation' (the default)"
                   if kind == "product" else "it is not a ReLU-style activation; convert "
                   "with nonlinear='expectation' (the default)")
        raise fail(REASONS.get(name, default))
    if kind == "activation":
        lower, upper = clip_bounds(node, gm)
        if lower != 0.0 or not (upper is not None and upper > 0 and not math.isnan(upper)):
            raise fail(f"only ReLU-style clipping clip(x, 0, a) with a > 0 can be converted, "
                       f"got lower={lower}, upper={upper}")
    indices = node.kwargs.get("return_indices") or (len(node.args) > 6 and node.args[6])
    if kind == "maxpool" and node.op == "call_function" and indices:
        raise fail("max pooling with return_indices=True cannot be converted")
    if kind == "affine" and node.op == "call_function" and node.target in (torch.cat,
                                                                          torch.concat):
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        if dim == 0:
            raise fail("concatenation along dimension 0 mixes the batch dimension")
    return OpInfo(kind, label)
