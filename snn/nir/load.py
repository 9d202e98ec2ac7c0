"""Build a model from a NIR graph."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch
from torch import Tensor, nn

from snn.layers.recurrent import Recurrent
from snn.layers.time import fold_time, unfold_time
from snn.neurons.base import BaseNeuron
from snn.neurons.cuba import CubaLIF
from snn.neurons.lif import IF, LI, LIF
from snn.nir.layers import Scale, SumPool2d
from snn.nir.mapping import Discretisation, get_discretisation, input_gain
from snn.surrogate import SURROGATES, get_surrogate

__all__ = ["IMPORTERS", "NIRGraphModule", "NIRImportError", "load"]

GAIN_RTOL = 1e-6
"""Relative tolerance under which an input gain counts as exactly 1 (float32 resolution):
time constants written by other tools as ``dt / (1 - beta)`` give back their gain only up to
rounding."""


class NIRImportError(ValueError):
    """A NIR graph (or one of its nodes) has no equivalent here; the message names the node."""


@dataclass
class _Ctx:
    name: str
    dt: float
    disc: Discretisation


Importer = Callable[[Any, _Ctx], nn.Module]


# -- helpers ---------------------------------------------------------------------------------


def _meta(node: nir.NIRNode, key: str) -> Any:
    meta = getattr(node, "metadata", None) or {}
    value = meta.get(key)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO" and value.shape == ():
        value = value.item()
        return value.decode() if isinstance(value, bytes) else value
    return value


def _t(a: Any) -> Tensor:
    if isinstance(a, Tensor):  # some exporters (Norse) store torch tensors in the graph
        a = a.detach().cpu().double().numpy()
    return torch.as_tensor(np.array(a, dtype=np.float64), dtype=torch.float32)


def _uniform(a: Any) -> float | None:
    arr = np.asarray(a, dtype=np.float64)
    if arr.size and np.all(arr == arr.flat[0]):
        return float(arr.flat[0])
    return None


def _set_param(module: nn.Module, name: str, value: Any) -> None:
    """A float attribute when every neuron shares the value, else a per-neuron buffer."""
    u = _uniform(value)
    if u is not None:
        setattr(module, name, u)
        return
    delattr(module, name)
    module.register_buffer(name, _t(value))


def _is_one(a: np.ndarray) -> bool:
    return bool(np.allclose(a, 1.0, rtol=GAIN_RTOL, atol=0.0))


def _check_leak(node: Any, ctx: _Ctx) -> None:
    if not np.allclose(np.asarray(node.v_leak, np.float64), 0.0):
        raise NIRImportError(
            f"node {ctx.name!r}: v_leak != 0 is not supported (the neurons here rest at 0)"
        )


def _spike_kwargs(node: Any, ctx: _Ctx) -> dict[str, Any]:
    """threshold/reset options: NIR semantics, refined by this library's own metadata."""
    v_reset = _uniform(node.v_reset)
    if v_reset is None:
        raise NIRImportError(f"node {ctx.name!r}: per-neuron v_reset is not supported")
    kwargs: dict[str, Any] = {"reset": "hard", "v_reset": v_reset}
    reset = _meta(node, "snn_reset")
    if reset in ("subtract", "none"):
        kwargs["reset"] = reset
        kwargs["v_reset"] = float(_meta(node, "snn_v_reset") or 0.0)
    name = _meta(node, "snn_surrogate")
    if name in SURROGATES:
        fields = str(_meta(node, "snn_surrogate_fields") or "")
        values = np.atleast_1d(np.asarray(_meta(node, "snn_surrogate_values"), np.float64))
        params = dict(zip([f for f in fields.split(",") if f], values.tolist(), strict=False))
        kwargs["surrogate"] = get_surrogate(name, **params)
    if _meta(node, "snn_detach_reset") is not None:
        kwargs["detach_reset"] = bool(int(_meta(node, "snn_detach_reset")))
    return kwargs


def _threshold(module: nn.Module, node: Any) -> None:
    _set_param(module, "threshold", node.v_threshold)


def _exact_decay(node: Any, key: str, tau: Any, ctx: _Ctx) -> np.ndarray:
    """The per-step decay of ``tau``; the exact value from metadata when it was written with
    the same step and rule and agrees with ``tau``."""
    decay = ctx.disc.decay(tau, ctx.dt)
    stored = _meta(node, f"snn_{key}")
    if (
        stored is not None
        and _meta(node, "snn_discretisation") == ctx.disc.name
        and _meta(node, "snn_dt") is not None
        and math.isclose(float(_meta(node, "snn_dt")), ctx.dt, rel_tol=1e-12)
    ):
        stored = np.broadcast_to(np.asarray(stored, np.float64), decay.shape)
        if np.allclose(stored, decay, rtol=1e-9, atol=0.0):
            return stored
    return decay


def _with_gain(gain: np.ndarray, neuron: BaseNeuron) -> nn.Module:
    return neuron if _is_one(gain) else nn.Sequential(Scale(_t(gain)), neuron)


def _membrane(node: Any, beta: np.ndarray, r: Any) -> tuple[bool, np.ndarray]:
    """``(decay_input, remaining gain)`` reproducing the membrane input gain ``(1-beta) R``."""
    if _meta(node, "snn_decay_input") is not None:
        decay_input = bool(int(_meta(node, "snn_decay_input")))
        if decay_input and _is_one(np.asarray(r, np.float64)):
            return True, np.ones_like(beta)
        if not decay_input and _is_one(input_gain(beta, r)):
            return False, np.ones_like(beta)
    gain = input_gain(beta, r)
    if not _is_one(gain) and _is_one(np.asarray(r, np.float64)):
        return True, np.ones_like(beta)
    return False, gain


# -- importers -------------------------------------------------------------------------------


def _affine(node: nir.Affine, ctx: _Ctx) -> nn.Module:
    w = np.asarray(node.weight)
    m = nn.Linear(w.shape[1], w.shape[0], bias=True)
    with torch.no_grad():
        m.weight.copy_(_t(w))
        m.bias.copy_(_t(node.bias))
    return m


def _linear(node: nir.Linear, ctx: _Ctx) -> nn.Module:
    w = np.asarray(node.weight)
    m = nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        m.weight.copy_(_t(w))
    return m


def _conv(node: nir.Conv1d | nir.Conv2d, ctx: _Ctx) -> nn.Module:
    w = np.asarray(node.weight)
    cls = nn.Conv1d if isinstance(node, nir.Conv1d) else nn.Conv2d

    def arg(v: Any) -> Any:
        if isinstance(v, str):
            return v
        arr = np.atleast_1d(np.asarray(v)).astype(int)
        return int(arr[0]) if cls is nn.Conv1d else tuple(int(x) for x in np.broadcast_to(arr, 2))

    m = cls(
        w.shape[1] * int(node.groups),
        w.shape[0],
        kernel_size=tuple(w.shape[2:]),
        stride=arg(node.stride),
        padding=arg(node.padding),
        dilation=arg(node.dilation),
        groups=int(node.groups),
        bias=True,
    )
    with torch.no_grad():
        m.weight.copy_(_t(w))
        m.bias.copy_(_t(node.bias))
    return m


def _pool_args(node: Any) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    def pair(v: Any) -> tuple[int, ...]:
        return tuple(int(x) for x in np.broadcast_to(np.atleast_1d(np.asarray(v)), 2))

    return pair(node.kernel_size), pair(node.stride), pair(node.padding)


def _avgpool(node: nir.AvgPool2d, ctx: _Ctx) -> nn.Module:
    k, s, p = _pool_args(node)
    return nn.AvgPool2d(k, s, p)


def _sumpool(node: nir.SumPool2d, ctx: _Ctx) -> nn.Module:
    k, s, p = _pool_args(node)
    return SumPool2d(k, s, p)


def _flatten(node: nir.Flatten, ctx: _Ctx) -> nn.Module:
    def shift(d: int) -> int:
        return int(d) + 1 if int(d) >= 0 else int(d)

    return nn.Flatten(shift(node.start_dim), shift(node.end_dim))


def _scale(node: nir.Scale, ctx: _Ctx) -> nn.Module:
    return Scale(_t(node.scale))


def _identity(node: Any, ctx: _Ctx) -> nn.Module:
    return nn.Identity()


def _if(node: nir.IF, ctx: _Ctx) -> nn.Module:
    m = IF(**_spike_kwargs(node, ctx))
    _threshold(m, node)
    return _with_gain(np.asarray(node.r, np.float64) * ctx.dt, m)


def _lif(node: nir.LIF, ctx: _Ctx) -> nn.Module:
    _check_leak(node, ctx)
    beta = _exact_decay(node, "beta", node.tau, ctx)
    decay_input, gain = _membrane(node, beta, node.r)
    m = LIF(beta=0.5, decay_input=decay_input, **_spike_kwargs(node, ctx))
    _set_param(m, "beta", beta)
    _threshold(m, node)
    return _with_gain(gain, m)


def _li(node: nir.LI, ctx: _Ctx) -> nn.Module:
    _check_leak(node, ctx)
    beta = _exact_decay(node, "beta", node.tau, ctx)
    decay_input, gain = _membrane(node, beta, node.r)
    m = LI(beta=0.5, decay_input=decay_input)
    _set_param(m, "beta", beta)
    return _with_gain(gain, m)


def _cuba(node: nir.CubaLIF, ctx: _Ctx) -> nn.Module:
    _check_leak(node, ctx)
    alpha = _exact_decay(node, "alpha", node.tau_syn, ctx)
    beta = _exact_decay(node, "beta", node.tau_mem, ctx)
    current_gain = input_gain(alpha, node.w_in)
    if _is_one(current_gain):
        decay_input, gain = _membrane(node, beta, node.r)
    else:
        decay_input, gain = False, current_gain * input_gain(beta, node.r)
    m = CubaLIF(alpha=0.5, beta=0.5, decay_input=decay_input, **_spike_kwargs(node, ctx))
    _set_param(m, "alpha", alpha)
    _set_param(m, "beta", beta)
    _threshold(m, node)
    return _with_gain(gain, m)


IMPORTERS: dict[type, Importer] = {
    nir.Affine: _affine,
    nir.Linear: _linear,
    nir.Conv1d: _conv,
    nir.Conv2d: _conv,
    nir.AvgPool2d: _avgpool,
    nir.SumPool2d: _sumpool,
    nir.Flatten: _flatten,
    nir.Scale: _scale,
    nir.Input: _identity,
    nir.Output: _identity,
    nir.IF: _if,
    nir.LIF: _lif,
    nir.LI: _li,
    nir.CubaLIF: _cuba,
}
"""NIR node class -> function building the module. Register a class here to import it."""

if hasattr(nir, "Identity"):  # not exported by every nir release
    IMPORTERS[nir.Identity] = _identity

_NEURON_NODES = (nir.IF, nir.LIF, nir.LI, nir.CubaLIF)


# -- graph surgery ---------------------------------------------------------------------------


def _flatten_graph(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict, list, str, str]:
    """Inline sub-graphs; return ``(nodes, edges, input_name, output_name)``."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, str] = {}
    exit_: dict[str, str] = {}
    inputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Input)]
    outputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Output)]
    where = f"sub-graph {prefix[:-1]!r}" if prefix else "the graph"
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRImportError(
            f"{where} must have exactly one Input and one Output node, got inputs {inputs} and "
            f"outputs {outputs}"
        )
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_in, sub_out = _flatten_graph(node, full + ".")
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
            entry[name], exit_[name] = sub_in, sub_out
        else:
            nodes[full] = node
            entry[name] = exit_[name] = full
    for a, b in graph.edges:
        if a not in graph.nodes or b not in graph.nodes:
            raise NIRImportError(f"{where}: edge ({a!r}, {b!r}) names a node that does not exist")
        edges.append((exit_[a], entry[b]))
    return nodes, edges, prefix + inputs[0], prefix + outputs[0]


def _fold_recurrences(nodes: dict, edges: list, ctx: _Ctx) -> tuple[dict, list, dict]:
    """Replace each neuron <-> Linear/Affine two-node cycle by one ``Recurrent`` entry."""
    recurrent: dict[str, tuple[str, str]] = {}
    edge_set = set(edges)
    for a, b in list(edge_set):
        if (b, a) not in edge_set or a not in nodes or b not in nodes:
            continue
        if not (
            isinstance(nodes[a], _NEURON_NODES) and isinstance(nodes[b], nir.Affine | nir.Linear)
        ):
            continue
        w_in = [e for e in edge_set if e[1] == b]
        w_out = [e for e in edge_set if e[0] == b]
        if len(w_in) != 1 or len(w_out) != 1:
            continue
        pa, pb = a.rpartition(".")[0], b.rpartition(".")[0]
        name = pa if pa and pa == pb and pa not in nodes else a
        recurrent[name] = (a, b)
    for name, (neuron, weight) in recurrent.items():
        new_edges = []
        for e in edges:
            if e in ((neuron, weight), (weight, neuron)):
                continue
            new_edges.append((name if e[0] == neuron else e[0], name if e[1] == neuron else e[1]))
        edges = new_edges
        nodes[name] = ("recurrent", nodes.pop(neuron), nodes.pop(weight), neuron, weight)
    return nodes, edges, recurrent


def _toposort(nodes: dict, edges: list) -> list[str]:
    indeg = {n: 0 for n in nodes}
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    ready = [n for n in nodes if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    if len(order) != len(nodes):
        cyc = sorted(n for n in nodes if n not in order)
        raise NIRImportError(
            f"the graph has a cycle through {cyc} that is not a neuron <-> Linear/Affine "
            "recurrence; only such recurrent layers are supported"
        )
    return order


def _build(node: Any, ctx: _Ctx) -> nn.Module:
    if isinstance(node, tuple) and node and node[0] == "recurrent":
        _, neuron, weight, neuron_name, weight_name = node
        return Recurrent(
            _build(neuron, _Ctx(neuron_name, ctx.dt, ctx.disc)),
            _build(weight, _Ctx(weight_name, ctx.dt, ctx.disc)),
        )
    importer = IMPORTERS.get(type(node))
    if importer is None:
        raise NIRImportError(
            f"node {ctx.name!r} of type {type(node).__name__} is not supported; supported: "
            f"{sorted(c.__name__ for c in IMPORTERS)} and neuron <-> Linear recurrences"
        )
    try:
        return importer(node, ctx)
    except NIRImportError:
        raise
    except (ValueError, TypeError) as err:
        raise NIRImportError(f"node {ctx.name!r} ({type(node).__name__}): {err}") from err


def _key(name: str, taken: set[str]) -> str:
    key = name.replace(".", "_") or "_"
    base, i = key, 1
    while key in taken:
        key, i = f"{base}_{i}", i + 1
    taken.add(key)
    return key


# -- the module ------------------------------------------------------------------------------


class NIRGraphModule(nn.Module):
    """A model read from a NIR graph, run in graph order.

    Every node's input is the sum of its predecessors' outputs. Stateless layers are applied to
    every time step at once (time folded into the batch); neurons and recurrent layers keep
    their state between calls like any other neuron (:func:`snn.reset` clears it).

    Input: ``[T, B, ...]`` (or ``[B, ...]`` after ``snn.set_step_mode(model, "single")``).

    Attributes:
        layers: the modules by (sanitised) node name.
        node_names: sanitised name -> name of the node in the NIR graph.
    """

    def __init__(
        self,
        layers: dict[str, nn.Module],
        order: list[str],
        preds: dict[str, list[str]],
        input_name: str,
        output_name: str,
        node_names: dict[str, str],
    ):
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.order = list(order)
        self.preds = {k: list(v) for k, v in preds.items()}
        self.input_name, self.output_name = input_name, output_name
        self.node_names = dict(node_names)
        self._stateful = {
            k for k, m in self.layers.items() if any(isinstance(x, BaseNeuron) for x in m.modules())
        }

    def _single_step(self) -> bool:
        modes = {m.step_mode for m in self.modules() if isinstance(m, BaseNeuron)}
        return modes == {"single"}

    def forward(self, x: Tensor) -> Tensor:
        single = self._single_step()
        if not single and x.dim() < 2:
            raise ValueError(f"expected a time-first sequence [T, B, ...], got {tuple(x.shape)}")
        values: dict[str, Tensor] = {}
        for name in self.order:
            if name == self.input_name:
                values[name] = x
                continue
            srcs = self.preds[name]
            if not srcs:
                raise NIRImportError(f"node {self.node_names[name]!r} has no input")
            h = values[srcs[0]]
            for s in srcs[1:]:
                h = h + values[s]
            layer = self.layers[name]
            if single or name in self._stateful or isinstance(layer, nn.Identity):
                values[name] = layer(h)
            else:
                values[name] = unfold_time(layer(fold_time(h)), h.shape[0])
        return values[self.output_name]


def load(
    graph: nir.NIRGraph | str | Path,
    *,
    dt: float | None = None,
    discretisation: str | None = None,
) -> NIRGraphModule:
    r"""Build a model from a NIR graph (or a ``.nir`` file).

    Time constants become per-step decays with the step ``dt`` and the rule ``discretisation``
    (:mod:`snn.nir.mapping`); a resistance or input weight that the neuron's own input
    convention does not give becomes a :class:`~snn.nir.layers.Scale` in front of it. Graphs
    written by :func:`snn.nir.export` carry their step and rule, and their exact parameters,
    so they come back bit for bit. For graphs from snnTorch pass ``dt=1e-4,
    discretisation="euler"``; from Norse, the ``dt`` its exporter used and ``"euler"``.

    Args:
        graph: the graph, or the path of a file written by ``nir.write``.
        dt: simulation step; default: the one stored by :func:`snn.nir.export`.
        discretisation: ``"zoh"`` or ``"euler"``; default: the stored one.

    Returns:
        a :class:`NIRGraphModule` taking ``[T, B, ...]`` inputs.

    Raises:
        NIRImportError: for unsupported nodes, cycles or parameters (the message names the node).
        ValueError: when the graph carries no time step and ``dt`` is not given.
        FileNotFoundError: for a missing file.
    """
    if isinstance(graph, str | Path):
        path = Path(graph)
        if not path.is_file():
            raise FileNotFoundError(f"NIR file not found: {path}")
        graph = nir.read(str(path))
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph must be a nir.NIRGraph or a path, got {type(graph).__name__}")
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if dt is None:
        if meta.get("snn_dt") is None:
            raise ValueError(
                "the graph does not say its time step; pass dt=... and discretisation=... "
                "(snnTorch: dt=1e-4, 'euler'; Norse: its exporter's dt, 'euler')"
            )
        dt = float(np.asarray(meta["snn_dt"]))
    if discretisation is None:
        stored = meta.get("snn_discretisation")
        if isinstance(stored, bytes | np.ndarray):
            stored = np.asarray(stored).item()
            stored = stored.decode() if isinstance(stored, bytes) else stored
        if stored is None:
            raise ValueError("the graph does not say its discretisation; pass discretisation=")
        discretisation = str(stored)
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt must be positive and finite, got {dt}")
    disc = get_discretisation(discretisation)
    nodes, edges, input_name, output_name = _flatten_graph(graph)
    ctx = _Ctx("", float(dt), disc)
    nodes, edges, _ = _fold_recurrences(nodes, edges, ctx)
    order = _toposort(nodes, edges)
    taken: set[str] = set()
    keys = {n: _key(n, taken) for n in order}
    layers = {keys[n]: _build(nodes[n], _Ctx(n, float(dt), disc)) for n in order}
    preds: dict[str, list[str]] = {keys[n]: [] for n in order}
    for a, b in edges:
        preds[keys[b]].append(keys[a])
    return NIRGraphModule(
        layers,
        [keys[n] for n in order],
        preds,
        keys[input_name],
        keys[output_name],
        {keys[n]: n for n in order},
    )
