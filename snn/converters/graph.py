"""Tracing and the table of operations the converter understands.

Every node of the traced graph is put in one category:

- ``affine``: linear or affine in its (single) time-varying input, applied unchanged at every
  time step (Conv, Linear, average pooling, reshapes, additions, concatenation, scaling by a
  constant). Time averaging commutes with these, so they need no spiking counterpart.
- ``activation``: a ReLU-style activation (``clip(x, 0, a)``) or :class:`~snn.converters.QCFS`,
  replaced by an IF neuron.
- ``maxpool``: max pooling, replaced by :class:`~snn.converters.SpikingMaxPool`.
- ``batchnorm``, ``dropout``, ``identity``: folded or removed by the passes.

Anything else raises :class:`~snn.converters.UnsupportedOperationError` naming the operation and
the source line that produced it.
"""

from __future__ import annotations

import math
import operator
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from snn.converters.errors import UnsupportedOperationError
from snn.converters.modules import ActivationSite, ChannelAffine, IFActivation, SpikingMaxPool
from snn.converters.qcfs import QCFS

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

MODULE_KINDS: dict[type[nn.Module], str] = {
    nn.Conv1d: "affine",
    nn.Conv2d: "affine",
    nn.Conv3d: "affine",
    nn.Linear: "affine",
    nn.AvgPool1d: "affine",
    nn.AvgPool2d: "affine",
    nn.AvgPool3d: "affine",
    nn.AdaptiveAvgPool1d: "affine",
    nn.AdaptiveAvgPool2d: "affine",
    nn.AdaptiveAvgPool3d: "affine",
    nn.Flatten: "affine",
    nn.Unflatten: "affine",
    nn.ZeroPad2d: "affine",
    ChannelAffine: "affine",
    nn.BatchNorm1d: "batchnorm",
    nn.BatchNorm2d: "batchnorm",
    nn.BatchNorm3d: "batchnorm",
    nn.Dropout: "dropout",
    nn.Dropout1d: "dropout",
    nn.Dropout2d: "dropout",
    nn.Dropout3d: "dropout",
    nn.AlphaDropout: "dropout",
    nn.FeatureAlphaDropout: "dropout",
    nn.Identity: "identity",
    nn.ReLU: "activation",
    nn.ReLU6: "activation",
    nn.Hardtanh: "activation",
    QCFS: "activation",
    ActivationSite: "activation",
    IFActivation: "neuron",
    nn.MaxPool1d: "maxpool",
    nn.MaxPool2d: "maxpool",
    nn.MaxPool3d: "maxpool",
    nn.AdaptiveMaxPool1d: "maxpool",
    nn.AdaptiveMaxPool2d: "maxpool",
    nn.AdaptiveMaxPool3d: "maxpool",
    SpikingMaxPool: "neuron",
}
"""Leaf module types by category (exact types; subclasses are not assumed to behave alike)."""

FUNCTION_KINDS: dict[Callable[..., Any], str] = {
    operator.add: "affine",
    operator.sub: "affine",
    operator.neg: "affine",
    operator.pos: "affine",
    operator.getitem: "affine",
    getattr: "affine",
    torch.add: "affine",
    torch.sub: "affine",
    torch.cat: "affine",
    torch.concat: "affine",
    torch.flatten: "affine",
    torch.reshape: "affine",
    torch.squeeze: "affine",
    torch.unsqueeze: "affine",
    torch.mean: "affine",
    torch.sum: "affine",
    F.linear: "affine",
    F.conv1d: "affine",
    F.conv2d: "affine",
    F.conv3d: "affine",
    F.avg_pool1d: "affine",
    F.avg_pool2d: "affine",
    F.avg_pool3d: "affine",
    F.adaptive_avg_pool1d: "affine",
    F.adaptive_avg_pool2d: "affine",
    F.adaptive_avg_pool3d: "affine",
    operator.mul: "scale",
    operator.truediv: "scale",
    torch.mul: "scale",
    torch.div: "scale",
    F.relu: "activation",
    F.relu_: "activation",
    torch.relu: "activation",
    torch.relu_: "activation",
    F.relu6: "activation",
    F.hardtanh: "activation",
    torch.clamp: "activation",
    torch.clip: "activation",
    torch.clamp_min: "activation",
    F.max_pool1d: "maxpool",
    F.max_pool2d: "maxpool",
    F.max_pool3d: "maxpool",
    F.adaptive_max_pool1d: "maxpool",
    F.adaptive_max_pool2d: "maxpool",
    F.adaptive_max_pool3d: "maxpool",
    F.dropout: "dropout",
    F.dropout1d: "dropout",
    F.dropout2d: "dropout",
    F.dropout3d: "dropout",
    F.alpha_dropout: "dropout",
    F.feature_alpha_dropout: "dropout",
}
"""``call_function`` targets by category (``scale``: affine when at most one operand varies)."""

METHOD_KINDS: dict[str, str] = {
    **dict.fromkeys(
        ["view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "squeeze",
         "unsqueeze", "contiguous", "clone", "add", "sub", "neg", "mean", "sum", "size", "dim"],
        "affine",
    ),
    **dict.fromkeys(["mul", "div"], "scale"),
    **dict.fromkeys(["relu", "relu_", "clamp", "clamp_", "clip", "clamp_min", "clamp_min_"],
                    "activation"),
}
"""``call_method`` names (``Tensor.<name>``) by category."""

_REASONS = {
    "GELU": "it is not a ReLU-style activation; an IF neuron's rate represents only "
    "clip(x, 0, threshold)",
    "LayerNorm": "it divides by statistics of the activation itself, which spike trains do "
    "not provide",
    "MultiheadAttention": "attention multiplies two activations, and time-averaged spike "
    "trains do not multiply",
    "Softmax": "it is not a ReLU-style activation",
}


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
        if mod.startswith("torch.nn.functional"):
            return f"F.{name}"
        if mod in ("_operator", "operator"):
            return f"operator.{name}"
        if mod.startswith("torch"):
            return f"torch.{name}"
        return f"{mod}.{name}" if mod else name
    return node.op


def dynamic_nodes(graph: fx.Graph) -> set[fx.Node]:
    """Nodes whose value depends on the network input (the rest are constants)."""
    dynamic: set[fx.Node] = set()
    for node in graph.nodes:
        varies = node.op != "get_attr" and any(n in dynamic for n in node.all_input_nodes)
        if node.op == "placeholder" or varies:
            dynamic.add(node)
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


def classify(node: fx.Node, gm: fx.GraphModule, dynamic: set[fx.Node]) -> OpInfo:
    """Category of ``node``.

    Raises:
        UnsupportedOperationError: when the operation has no spiking counterpart.
    """
    if node.op in ("placeholder", "output", "get_attr"):
        return OpInfo(node.op, node.op)
    label = op_label(node, gm)

    def fail(reason: str) -> UnsupportedOperationError:
        return UnsupportedOperationError(label, reason, node=node.name, source=node_source(node))

    if node.op == "call_module":
        module = gm.get_submodule(node.target)
        kind = MODULE_KINDS.get(type(module))
        if kind is None:
            name = type(module).__name__
            raise fail(_REASONS.get(name, "no spiking counterpart is known for this layer"))
        if kind == "maxpool" and getattr(module, "return_indices", False):
            raise fail("max pooling with return_indices=True cannot be converted")
        if kind == "batchnorm" and module.running_mean is None:
            raise fail("BatchNorm without running statistics normalises by the batch at "
                       "inference; it cannot be folded")
    elif node.op == "call_function":
        kind = FUNCTION_KINDS.get(node.target)
        if kind is None:
            name = getattr(node.target, "__name__", "")
            raise fail(_REASONS.get(name, "no spiking counterpart is known for this function"))
    else:
        kind = METHOD_KINDS.get(str(node.target))
        if kind is None:
            raise fail("no spiking counterpart is known for this tensor method")
    if kind == "scale":
        operands = [a for a in node.args if isinstance(a, fx.Node) and a in dynamic]
        if len(operands) > 1 or (len(node.args) > 1 and node.args[-1] in dynamic
                                 and label.endswith(("truediv", "div"))):
            raise fail("it multiplies or divides by another activation; time-averaged spike "
                       "trains do not multiply (attention-style products cannot be converted)")
        kind = "affine"
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
