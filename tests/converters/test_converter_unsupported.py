"""Operations with no spiking counterpart fail with a named error and the source line."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snn.converters import ConversionError, UnsupportedOperationError, convert


def _line_of(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    for i, line in enumerate(lines):
        if text in line:
            return start + i
    raise AssertionError(f"{text!r} not in the source of {fn}")


class GeluNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))  # gelu here


class SigmoidNet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * 2  # sigmoid here


class LayerNormNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)  # layernorm here


class AttentionNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(4, 4)
        self.k = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.q(x) * self.k(x)  # product here


class MHANet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(4, 1)  # sequence first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x)[0]  # attention here


class BranchNet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # branch here
            return F.relu(x)
        return x


class LeakyNet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x)  # leaky here


class SymmetricClampNet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, -1.0, 1.0)  # clamp here


class BatchCatNet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(x), x], 0)  # cat here


class FlattenAllNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).view(-1)  # view here


class FunctionalGeluNet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x) * 2  # fgelu here


class BakedViewNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(x).view(6, -1))  # baked here


class BatchSoftmaxNet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, 0)  # batch softmax here


class DivideNet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / (F.relu(x) + 1.0)  # divide here


OFF = {"nonlinear": None}
CASES = [
    (GeluNet, "nn.GELU", "gelu here", (6, 4), OFF, "GELU is not a ReLU-style activation"),
    (FunctionalGeluNet, "F.gelu", "fgelu here", (6, 4), OFF,
     "F.gelu is not a ReLU-style activation"),
    (SigmoidNet, "torch.sigmoid", "sigmoid here", (6, 4), OFF, "not a ReLU-style activation"),
    (LayerNormNet, "nn.LayerNorm", "layernorm here", (6, 4), OFF, "statistics"),
    (AttentionNet, "operator.mul", "product here", (6, 4), OFF, "multiplies two activations"),
    (MHANet, "nn.MultiheadAttention", "attention here", (6, 3, 4), {}, "batch_first=True"),
    (BranchNet, "data-dependent control flow", "branch here", (6, 4), {}, "branch"),
    (LeakyNet, "F.leaky_relu", "leaky here", (6, 4), {}, "no spiking counterpart"),
    (SymmetricClampNet, "torch.clamp", "clamp here", (6, 4), {}, "ReLU-style clipping"),
    (BatchCatNet, "torch.cat", "cat here", (6, 4), {}, "dimension 0"),
    (FlattenAllNet, "Tensor.view", "view here", (6, 4), {}, "batch dimension"),
    (BakedViewNet, "Tensor.view", "baked here", (6, 4), {}, "x.view(64, -1)"),
    (BatchSoftmaxNet, "torch.softmax", "batch softmax here", (6, 4), {}, "other samples"),
    (DivideNet, "operator.truediv", "divide here", (6, 4), {}, "divides by another"),
]


@pytest.mark.parametrize(("model", "op", "marker", "shape", "kwargs", "reason"), CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_unsupported_operation_is_named_with_its_source_line(model, op, marker, shape, kwargs,
                                                             reason) -> None:
    with pytest.raises(UnsupportedOperationError) as info:
        convert(model(), torch.randn(*shape), **kwargs)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.op == op
    assert op in str(err)
    assert reason in str(err)
    line = _line_of(model.forward, marker)
    assert err.source is not None and err.source.startswith(f"{__file__}:{line}:"), err.source
    assert marker in str(err)


def test_two_inputs_or_tuple_output_are_rejected() -> None:
    class TwoInputs(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return x + y

    class TupleOut(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return F.relu(x), x

    with pytest.raises(ConversionError, match="exactly one input"):
        convert(TwoInputs(), torch.randn(4, 3))
    with pytest.raises(ConversionError, match="single tensor"):
        convert(TupleOut(), torch.randn(4, 3))


def test_bad_arguments() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(ValueError, match="method"):
        convert(model, torch.rand(4, 3), method="mean")
    with pytest.raises(ValueError, match="calibration"):
        convert(model, torch.rand(4, 3), calibration="weights")
    with pytest.raises(ValueError, match="no samples"):
        convert(model, torch.rand(0, 3))
    with pytest.raises(TypeError, match="calibration_data"):
        convert(model, [1, 2, 3])
    with pytest.raises(ValueError, match="encoding"):
        convert(model, torch.rand(4, 3), encoding="latency")
