"""Every entry of the converter's op tables converts: one example per entry, and an entry
without an example fails :func:`test_every_table_entry_has_an_example`."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snn.converters import UnsupportedOperationError, convert
from snn.converters.expectation import Expectation, SignedIFActivation, SignedSite
from snn.converters.graph import trace
from snn.converters.modules import (
    ActivationSite,
    ChannelAffine,
    IFActivation,
    ResidualAdd,
    SpikingMaxPool,
)
from snn.converters.ops import FUNCTION_KINDS, METHOD_KINDS, MODULE_KINDS, REASONS
from snn.converters.passes import ConversionPass, default_passes
from snn.converters.qcfs import QCFS

Fn = Callable[[Any, torch.Tensor], torch.Tensor]
TOK = (4, 6)  # tokens: [B, 4, 6]
IMG1, IMG2, IMG3 = (2, 8), (2, 6, 6), (2, 4, 4, 4)


class Wrap(nn.Module):
    """``fn(self, relu(x - 0.3))``: every example reads spikes of an IF layer."""

    def __init__(self, fn: Fn, modules: dict[str, nn.Module] | None = None,
                 params: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.fn = fn
        self.m = nn.ModuleDict(modules or {})
        self.p = nn.ParameterDict({k: nn.Parameter(v) for k, v in (params or {}).items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, F.relu(x - 0.3))


def _mod(module: nn.Module, shape: tuple[int, ...] = TOK, after: Fn | None = None):
    """An example applying ``module`` (then ``after``)."""
    def fn(s: Any, h: torch.Tensor) -> torch.Tensor:
        y = s.m["op"](h)
        return after(s, y) if after else y
    return shape, Wrap(fn, {"op": module})


def _fn(fn: Fn, shape: tuple[int, ...] = TOK, **params: torch.Tensor):
    return shape, Wrap(fn, params=params)


def _pair(s: Any, h: torch.Tensor) -> torch.Tensor:
    a, b = h
    return a + b


torch.manual_seed(0)
W6 = torch.randn(5, 6) * 0.3
K1 = torch.randn(3, 2, 3) * 0.3
K2 = torch.randn(3, 2, 3, 3) * 0.3
K3 = torch.randn(3, 2, 3, 3, 3) * 0.2

MODULE_EXAMPLES: dict[type, Callable[[], tuple[tuple[int, ...], nn.Module]]] = {
    nn.Conv1d: lambda: _mod(nn.Conv1d(2, 3, 3), IMG1),
    nn.Conv2d: lambda: _mod(nn.Conv2d(2, 3, 3), IMG2),
    nn.Conv3d: lambda: _mod(nn.Conv3d(2, 3, 3), IMG3),
    nn.Linear: lambda: _mod(nn.Linear(6, 5)),
    nn.AvgPool1d: lambda: _mod(nn.AvgPool1d(2), IMG1),
    nn.AvgPool2d: lambda: _mod(nn.AvgPool2d(2), IMG2),
    nn.AvgPool3d: lambda: _mod(nn.AvgPool3d(2), IMG3),
    nn.AdaptiveAvgPool1d: lambda: _mod(nn.AdaptiveAvgPool1d(3), IMG1),
    nn.AdaptiveAvgPool2d: lambda: _mod(nn.AdaptiveAvgPool2d(2), IMG2),
    nn.AdaptiveAvgPool3d: lambda: _mod(nn.AdaptiveAvgPool3d(2), IMG3),
    nn.Flatten: lambda: _mod(nn.Flatten()),
    nn.Unflatten: lambda: _mod(nn.Unflatten(2, (2, 3))),
    nn.ZeroPad2d: lambda: _mod(nn.ZeroPad2d(1), IMG2),
    ChannelAffine: lambda: _mod(ChannelAffine(torch.tensor([1.0, -2.0]), torch.tensor([0.1, 0.2])),
                                IMG2),
    nn.BatchNorm1d: lambda: _mod(nn.BatchNorm1d(2).eval(), IMG1),
    nn.BatchNorm2d: lambda: _mod(nn.BatchNorm2d(2).eval(), IMG2),
    nn.BatchNorm3d: lambda: _mod(nn.BatchNorm3d(2).eval(), IMG3),
    nn.Dropout: lambda: _mod(nn.Dropout(0.5)),
    nn.Dropout1d: lambda: _mod(nn.Dropout1d(0.5), IMG1),
    nn.Dropout2d: lambda: _mod(nn.Dropout2d(0.5), IMG2),
    nn.Dropout3d: lambda: _mod(nn.Dropout3d(0.5), IMG3),
    nn.AlphaDropout: lambda: _mod(nn.AlphaDropout(0.5)),
    nn.FeatureAlphaDropout: lambda: _mod(nn.FeatureAlphaDropout(0.5), IMG2),
    nn.Identity: lambda: _mod(nn.Identity()),
    nn.LayerNorm: lambda: _mod(nn.LayerNorm(6)),
    nn.GELU: lambda: _mod(nn.GELU()),
    nn.SiLU: lambda: _mod(nn.SiLU()),
    nn.Softmax: lambda: _mod(nn.Softmax(-1)),
    nn.Sigmoid: lambda: _mod(nn.Sigmoid()),
    nn.Tanh: lambda: _mod(nn.Tanh()),
    nn.ReLU: lambda: _mod(nn.ReLU()),
    nn.ReLU6: lambda: _mod(nn.ReLU6()),
    nn.Hardtanh: lambda: _mod(nn.Hardtanh(0.0, 0.5)),
    QCFS: lambda: _mod(QCFS(levels=32, threshold=1.0)),
    ActivationSite: lambda: _mod(ActivationSite(0.5)),
    nn.MaxPool1d: lambda: _mod(nn.MaxPool1d(2), IMG1),
    nn.MaxPool2d: lambda: _mod(nn.MaxPool2d(2), IMG2),
    nn.MaxPool3d: lambda: _mod(nn.MaxPool3d(2), IMG3),
    nn.AdaptiveMaxPool1d: lambda: _mod(nn.AdaptiveMaxPool1d(3), IMG1),
    nn.AdaptiveMaxPool2d: lambda: _mod(nn.AdaptiveMaxPool2d(2), IMG2),
    nn.AdaptiveMaxPool3d: lambda: _mod(nn.AdaptiveMaxPool3d(2), IMG3),
}
"""Leaf modules a user's model may contain: an example each."""

PRODUCED: dict[type, Callable[[], tuple[tuple[int, ...], nn.Module]]] = {
    IFActivation: lambda: _mod(nn.Linear(6, 5)),
    SpikingMaxPool: MODULE_EXAMPLES[nn.MaxPool2d],
    Expectation: MODULE_EXAMPLES[nn.GELU],
    SignedIFActivation: lambda: _mod(nn.GELU(), after=lambda s, y: y @ W6.T),
    SignedSite: lambda: _mod(nn.GELU(), after=lambda s, y: y @ W6.T),
    ResidualAdd: lambda: _mod(nn.Linear(6, 6), after=lambda s, y: y + s.m["op"](y)),
}
"""The converter's own modules: a model whose conversion produces each."""

FUNCTION_EXAMPLES: dict[Callable[..., Any], Callable[[], tuple[tuple[int, ...], nn.Module]]] = {
    operator.add: lambda: _fn(lambda s, h: h + 1.0),
    operator.sub: lambda: _fn(lambda s, h: h - h.mean(-1, keepdim=True)),
    operator.neg: lambda: _fn(lambda s, h: -h),
    operator.pos: lambda: _fn(lambda s, h: +h),
    operator.getitem: lambda: _fn(lambda s, h: h[:, 1:3, ::2]),
    getattr: lambda: _fn(lambda s, h: h.mT),
    torch.add: lambda: _fn(lambda s, h: torch.add(h, h)),
    torch.sub: lambda: _fn(lambda s, h: torch.sub(h, 0.5)),
    torch.cat: lambda: _fn(lambda s, h: torch.cat([h, -h], -1)),
    torch.concat: lambda: _fn(lambda s, h: torch.concat([h, h], 1)),
    torch.flatten: lambda: _fn(lambda s, h: torch.flatten(h, 1)),
    torch.reshape: lambda: _fn(lambda s, h: torch.reshape(h, (h.shape[0], 2, -1))),
    torch.squeeze: lambda: _fn(lambda s, h: torch.squeeze(h[:, :1], 1)),
    torch.unsqueeze: lambda: _fn(lambda s, h: torch.unsqueeze(h, 2)),
    torch.mean: lambda: _fn(lambda s, h: torch.mean(h, 1)),
    torch.sum: lambda: _fn(lambda s, h: torch.sum(h, -1)),
    torch.transpose: lambda: _fn(lambda s, h: torch.transpose(h, 1, 2)),
    torch.permute: lambda: _fn(lambda s, h: torch.permute(h, (0, 2, 1))),
    torch.swapaxes: lambda: _fn(lambda s, h: torch.swapaxes(h, 1, 2)),
    torch.swapdims: lambda: _fn(lambda s, h: torch.swapdims(h, 2, 1)),
    torch.movedim: lambda: _fn(lambda s, h: torch.movedim(h, 2, 1)),
    torch.chunk: lambda: _fn(lambda s, h: _pair(s, torch.chunk(h, 2, -1))),
    torch.split: lambda: _fn(lambda s, h: _pair(s, torch.split(h, 2, 1))),
    torch.unbind: lambda: _fn(lambda s, h: torch.unbind(h, 1)[0] - torch.unbind(h, 1)[3]),
    torch.stack: lambda: _fn(lambda s, h: torch.stack([h, 2 * h], 2)),
    torch.unflatten: lambda: _fn(lambda s, h: torch.unflatten(h, 2, (3, 2))),
    torch.narrow: lambda: _fn(lambda s, h: torch.narrow(h, 2, 1, 3)),
    F.linear: lambda: _fn(lambda s, h: F.linear(h, s.p["w"]), w=W6.clone()),
    F.conv1d: lambda: _fn(lambda s, h: F.conv1d(h, s.p["w"]), IMG1, w=K1.clone()),
    F.conv2d: lambda: _fn(lambda s, h: F.conv2d(h, s.p["w"]), IMG2, w=K2.clone()),
    F.conv3d: lambda: _fn(lambda s, h: F.conv3d(h, s.p["w"]), IMG3, w=K3.clone()),
    F.avg_pool1d: lambda: _fn(lambda s, h: F.avg_pool1d(h, 2), IMG1),
    F.avg_pool2d: lambda: _fn(lambda s, h: F.avg_pool2d(h, 2), IMG2),
    F.avg_pool3d: lambda: _fn(lambda s, h: F.avg_pool3d(h, 2), IMG3),
    F.adaptive_avg_pool1d: lambda: _fn(lambda s, h: F.adaptive_avg_pool1d(h, 2), IMG1),
    F.adaptive_avg_pool2d: lambda: _fn(lambda s, h: F.adaptive_avg_pool2d(h, 1), IMG2),
    F.adaptive_avg_pool3d: lambda: _fn(lambda s, h: F.adaptive_avg_pool3d(h, 2), IMG3),
    operator.mul: lambda: _fn(lambda s, h: h * 0.5),
    operator.truediv: lambda: _fn(lambda s, h: h / 4.0),
    torch.mul: lambda: _fn(lambda s, h: torch.mul(h, 3.0)),
    torch.div: lambda: _fn(lambda s, h: torch.div(h, 3.0)),
    torch.matmul: lambda: _fn(lambda s, h: torch.matmul(h, h.transpose(1, 2))),
    operator.matmul: lambda: _fn(lambda s, h: h @ h.mT),
    torch.bmm: lambda: _fn(lambda s, h: torch.bmm(h.mT, h)),
    F.gelu: lambda: _fn(lambda s, h: F.gelu(h - 0.2)),
    F.silu: lambda: _fn(lambda s, h: F.silu(h - 0.2)),
    F.layer_norm: lambda: _fn(lambda s, h: F.layer_norm(h, (6,))),
    F.softmax: lambda: _fn(lambda s, h: F.softmax(h, -1)),
    torch.softmax: lambda: _fn(lambda s, h: torch.softmax(h, 1)),
    torch.sigmoid: lambda: _fn(lambda s, h: torch.sigmoid(h)),
    torch.tanh: lambda: _fn(lambda s, h: torch.tanh(h - 0.3)),
    F.relu: lambda: _fn(lambda s, h: F.relu(h - 0.1)),
    F.relu_: lambda: _fn(lambda s, h: F.relu_(h - 0.1)),
    torch.relu: lambda: _fn(lambda s, h: torch.relu(h - 0.1)),
    torch.relu_: lambda: _fn(lambda s, h: torch.relu_(h - 0.1)),
    F.relu6: lambda: _fn(lambda s, h: F.relu6(h * 10)),
    F.hardtanh: lambda: _fn(lambda s, h: F.hardtanh(h, 0.0, 0.3)),
    torch.clamp: lambda: _fn(lambda s, h: torch.clamp(h, 0.0, 0.4)),
    torch.clip: lambda: _fn(lambda s, h: torch.clip(h - 0.1, 0.0)),
    torch.clamp_min: lambda: _fn(lambda s, h: torch.clamp_min(h - 0.1, 0.0)),
    F.max_pool1d: lambda: _fn(lambda s, h: F.max_pool1d(h, 2), IMG1),
    F.max_pool2d: lambda: _fn(lambda s, h: F.max_pool2d(h, 2), IMG2),
    F.max_pool3d: lambda: _fn(lambda s, h: F.max_pool3d(h, 2), IMG3),
    F.adaptive_max_pool1d: lambda: _fn(lambda s, h: F.adaptive_max_pool1d(h, 3), IMG1),
    F.adaptive_max_pool2d: lambda: _fn(lambda s, h: F.adaptive_max_pool2d(h, 2), IMG2),
    F.adaptive_max_pool3d: lambda: _fn(lambda s, h: F.adaptive_max_pool3d(h, 2), IMG3),
    F.dropout: lambda: _fn(lambda s, h: F.dropout(h, 0.5, False)),
    F.dropout1d: lambda: _fn(lambda s, h: F.dropout1d(h, 0.5, False), IMG1),
    F.dropout2d: lambda: _fn(lambda s, h: F.dropout2d(h, 0.5, False), IMG2),
    F.dropout3d: lambda: _fn(lambda s, h: F.dropout3d(h, 0.5, False), IMG3),
    F.alpha_dropout: lambda: _fn(lambda s, h: F.alpha_dropout(h, 0.5, False)),
    F.feature_alpha_dropout: lambda: _fn(lambda s, h: F.feature_alpha_dropout(h, 0.5, False),
                                         IMG2),
}

METHOD_EXAMPLES: dict[str, Callable[[], tuple[tuple[int, ...], nn.Module]]] = {
    "view": lambda: _fn(lambda s, h: h.view(h.shape[0], -1)),
    "view_as": lambda: _fn(lambda s, h: h.mT.contiguous().view_as(h)),
    "reshape": lambda: _fn(lambda s, h: h.reshape(-1, 3, 8)),
    "reshape_as": lambda: _fn(lambda s, h: h.mT.reshape_as(h)),
    "flatten": lambda: _fn(lambda s, h: h.flatten(1)),
    "unflatten": lambda: _fn(lambda s, h: h.unflatten(-1, (2, 3))),
    "squeeze": lambda: _fn(lambda s, h: h[:, :, :1].squeeze(-1)),
    "unsqueeze": lambda: _fn(lambda s, h: h.unsqueeze(1)),
    "contiguous": lambda: _fn(lambda s, h: h.mT.contiguous()),
    "clone": lambda: _fn(lambda s, h: h.clone()),
    "add": lambda: _fn(lambda s, h: h.add(1.0)),
    "sub": lambda: _fn(lambda s, h: h.sub(h.mean(1, keepdim=True))),
    "neg": lambda: _fn(lambda s, h: h.neg()),
    "mean": lambda: _fn(lambda s, h: h.mean(-1)),
    "sum": lambda: _fn(lambda s, h: h.sum(1)),
    "size": lambda: _fn(lambda s, h: h.reshape(h.size(0), h.size(1) * h.size(2))),
    "dim": lambda: _fn(lambda s, h: h.flatten(h.dim() - 2)),
    "transpose": lambda: _fn(lambda s, h: h.transpose(-1, -2)),
    "permute": lambda: _fn(lambda s, h: h.unsqueeze(1).permute(2, 0, 1, 3).permute(1, 2, 0, 3)),
    "swapaxes": lambda: _fn(lambda s, h: h.swapaxes(1, 2)),
    "swapdims": lambda: _fn(lambda s, h: h.swapdims(1, 2)),
    "movedim": lambda: _fn(lambda s, h: h.movedim(1, -1)),
    "chunk": lambda: _fn(lambda s, h: _pair(s, h.chunk(2, 1))),
    "split": lambda: _fn(lambda s, h: _pair(s, h.split(3, -1))),
    "unbind": lambda: _fn(lambda s, h: h.unsqueeze(0).unbind(0)[0]),
    "expand": lambda: _fn(lambda s, h: h[:, :1].expand(-1, 3, -1)),
    "expand_as": lambda: _fn(lambda s, h: h.mean(1, keepdim=True).expand_as(h)),
    "narrow": lambda: _fn(lambda s, h: h.narrow(1, 1, 2)),
    "unfold": lambda: _fn(lambda s, h: h.unfold(2, 2, 2).flatten(2)),
    "mul": lambda: _fn(lambda s, h: h.mul(2.0)),
    "div": lambda: _fn(lambda s, h: h.div(2.0)),
    "matmul": lambda: _fn(lambda s, h: h.matmul(h.mT)),
    "bmm": lambda: _fn(lambda s, h: h.bmm(h.mT)),
    "softmax": lambda: _fn(lambda s, h: h.softmax(-1)),
    "sigmoid": lambda: _fn(lambda s, h: h.sigmoid()),
    "tanh": lambda: _fn(lambda s, h: h.tanh()),
    "relu": lambda: _fn(lambda s, h: (h - 0.2).relu()),
    "relu_": lambda: _fn(lambda s, h: (h - 0.2).relu_()),
    "clamp": lambda: _fn(lambda s, h: h.clamp(0.0, 0.4)),
    "clamp_": lambda: _fn(lambda s, h: (h - 0.1).clamp_(0.0, 0.4)),
    "clip": lambda: _fn(lambda s, h: h.clip(0.0, 0.4)),
    "clamp_min": lambda: _fn(lambda s, h: (h - 0.1).clamp_min(0.0)),
    "clamp_min_": lambda: _fn(lambda s, h: (h - 0.1).clamp_min_(0.0)),
}


def test_every_table_entry_has_an_example() -> None:
    assert set(MODULE_KINDS) == set(MODULE_EXAMPLES) | set(PRODUCED)
    assert set(FUNCTION_KINDS) == set(FUNCTION_EXAMPLES)
    assert set(METHOD_KINDS) == set(METHOD_EXAMPLES)


def _uses(model: nn.Module, entry: Any, table: str) -> bool:
    gm = trace(model)
    for n in gm.graph.nodes:
        if table == "module" and n.op == "call_module":
            found = type(gm.get_submodule(n.target)) is entry
        elif table == "function":
            found = n.op == "call_function" and n.target is entry
        else:
            found = n.op == "call_method" and n.target == entry
        if found:
            return True
    return False


def _check_converts(model: nn.Module, shape: tuple[int, ...]) -> None:
    torch.manual_seed(3)
    x = torch.rand(8, *shape)
    net, _ = convert(model, x, method="max", time_chunk=32)
    with torch.no_grad():
        ann, analog = model.eval()(x), net.analog(x)
        out = net.simulate(x, 32)
    scale = 1.0 + float(analog.abs().max())
    err4 = float((out[3] - analog).abs().max())
    err64 = float((out[31] - analog).abs().max())
    assert out.shape[1:] == ann.shape
    assert err64 <= 0.05 * scale, (err4, err64)
    assert err64 <= err4 + 1e-5, (err4, err64)
    # max normalisation: every clipping threshold covers the calibration data
    assert torch.allclose(analog, ann, rtol=1e-4, atol=1e-4 * scale)


def _name(entry: Any) -> str:
    return getattr(entry, "__name__", str(entry))


@pytest.mark.parametrize("entry", list(MODULE_EXAMPLES), ids=_name)
def test_module_entry_converts(entry: type) -> None:
    shape, model = MODULE_EXAMPLES[entry]()
    assert _uses(model, entry, "module")
    _check_converts(model, shape)


@pytest.mark.parametrize("entry", list(FUNCTION_EXAMPLES), ids=_name)
def test_function_entry_converts(entry: Callable[..., Any]) -> None:
    shape, model = FUNCTION_EXAMPLES[entry]()
    assert _uses(model, entry, "function")
    _check_converts(model, shape)


@pytest.mark.parametrize("entry", list(METHOD_EXAMPLES))
def test_method_entry_converts(entry: str) -> None:
    shape, model = METHOD_EXAMPLES[entry]()
    assert _uses(model, entry, "method")
    _check_converts(model, shape)


@pytest.mark.parametrize("entry", list(PRODUCED), ids=_name)
def test_own_module_is_produced(entry: type) -> None:
    shape, model = PRODUCED[entry]()
    seen: list[type] = []

    def spy(ctx: Any) -> None:
        seen.extend(type(m) for m in ctx.graph_module.modules())

    passes = default_passes()
    passes.insert([p.name for p in passes].index("collect_statistics"), ConversionPass("spy", spy))
    net, _ = convert(model, torch.rand(8, *shape), passes=passes)
    produced = {type(m) for m in net.modules()} | set(seen)
    assert entry in produced


def test_residual_add_computes_the_original_operation() -> None:
    a, b = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 4.0])
    assert torch.equal(ResidualAdd()(a, b), torch.add(a, b))
    assert torch.equal(ResidualAdd("sub")(a, b, 2), torch.sub(a, b, alpha=2))
    assert torch.equal(ResidualAdd("sub")(1.0, b), 1.0 - b)
    with pytest.raises(ValueError, match="'add' or 'sub'"):
        ResidualAdd("mul")


W65 = W6.T.contiguous()  # [6, 5]: a constant right operand

SECOND_USE: dict[Any, Callable[[], tuple[tuple[int, ...], nn.Module]]] = {
    # ``scale`` entries with two time-varying operands: a product of two activations ...
    operator.mul: lambda: _fn(lambda s, h: h * h.mean(-1, keepdim=True)),
    torch.mul: lambda: _fn(lambda s, h: torch.mul(h, h.mean(1, keepdim=True))),
    "mul": lambda: _fn(lambda s, h: h.mul(h[:, :1])),
    # ... or, for a division by an activation, a refusal
    operator.truediv: lambda: _fn(lambda s, h: h / (h + 1.0)),
    torch.div: lambda: _fn(lambda s, h: torch.div(h, h + 1.0)),
    "div": lambda: _fn(lambda s, h: h.div(h + 1.0)),
    # ``product`` entries with one time-varying operand: affine
    torch.matmul: lambda: _fn(lambda s, h: torch.matmul(h, s.p["w"]), w=W65.clone()),
    operator.matmul: lambda: _fn(lambda s, h: h @ s.p["w"], w=W65.clone()),
    torch.bmm: lambda: _fn(lambda s, h: torch.bmm(h, s.p["w"].expand(h.shape[0], -1, -1)),
                           w=W65.clone()),
    "matmul": lambda: _fn(lambda s, h: h.matmul(s.p["w"]), w=W65.clone()),
    "bmm": lambda: _fn(lambda s, h: h.bmm(s.p["w"].expand(h.shape[0], -1, -1)),
                       w=W65.clone()),
}
"""The other behaviour of every entry whose category depends on its operands (``scale``:
affine with a constant, a product of two activations otherwise; ``product``: the reverse)."""


def test_every_two_way_entry_has_its_second_example() -> None:
    two_way = {k for table in (FUNCTION_KINDS, METHOD_KINDS) for k, v in table.items()
               if v in ("scale", "product")}
    assert set(SECOND_USE) == two_way


@pytest.mark.parametrize("entry", list(SECOND_USE), ids=_name)
def test_two_way_entry_second_use(entry: Any) -> None:
    shape, model = SECOND_USE[entry]()
    assert _uses(model, entry, "method" if isinstance(entry, str) else "function")
    if _name(entry) in ("truediv", "div"):
        with pytest.raises(UnsupportedOperationError, match="divides by another activation"):
            convert(model, torch.rand(8, *shape))
        return
    _check_converts(model, shape)
    net, _ = convert(model, torch.rand(8, *shape), method="max")
    products = [m for m in net.modules() if isinstance(m, Expectation)]
    kind = FUNCTION_KINDS.get(entry) if not isinstance(entry, str) else METHOD_KINDS[entry]
    assert len(products) == (1 if kind == "scale" else 0)


class _Call(nn.Module):
    def __init__(self, fn: Fn, module: nn.Module | None = None):
        super().__init__()
        self.fn, self.m = fn, module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)


REFUSED: dict[str, Callable[[], nn.Module]] = {
    "GELU": lambda: _Call(lambda s, x: s.m(x), nn.GELU()),
    "gelu": lambda: _Call(lambda s, x: F.gelu(x)),
    "LayerNorm": lambda: _Call(lambda s, x: s.m(x), nn.LayerNorm(4)),
    "layer_norm": lambda: _Call(lambda s, x: F.layer_norm(x, (4,))),
    "Softmax": lambda: _Call(lambda s, x: s.m(x), nn.Softmax(-1)),
    "softmax": lambda: _Call(lambda s, x: F.softmax(x, -1)),
}
"""A model refused (with ``nonlinear=None``) for each entry of the reasons table."""


@pytest.mark.parametrize("key", sorted(REASONS))
def test_every_refusal_reason_is_the_one_given(key: str) -> None:
    assert set(REFUSED) == set(REASONS)
    with pytest.raises(UnsupportedOperationError) as info:
        convert(REFUSED[key]().eval(), torch.randn(6, 3, 4), nonlinear=None)
    assert REASONS[key] in str(info.value)
