"""Modules that make up a converted network.

Every module of a converted graph runs on time folded into the batch, ``[T*B, ...]``, so that
the ANN's own layers (convolutions, reshapes, additions) apply unchanged to all time steps at
once. The stateful ones take the number of steps ``steps`` as a second argument to unfold time;
with ``steps=None`` they compute their ANN counterpart instead (the "analog" network the SNN
approximates: ReLU clipped at the threshold, QCFS quantisation, max pooling).
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import NamedTuple

import torch
from torch import Tensor, nn

from snn.functional.lif import LIFState
from snn.neurons.base import BaseNeuron
from snn.neurons.lif import IF

__all__ = [
    "ActivationSite",
    "ChannelAffine",
    "IFActivation",
    "MaxPoolState",
    "ResidualAdd",
    "SpikingMaxPool",
]


def _per_channel(t: Tensor, rank: int) -> Tensor:
    """Reshape a ``[C]`` tensor to broadcast along dimension 1 of a ``rank``-d ``[B, C, ...]``."""
    return t.reshape(-1, *([1] * (rank - 2))) if t.dim() == 1 else t


class ActivationSite(nn.Module):
    """A ReLU-style activation during conversion: :math:`\\min(\\max(x, 0), \\text{upper})`.

    Every ReLU form the converter accepts (``nn.ReLU``, ``F.relu``, ``torch.relu``,
    ``Tensor.relu``, ``ReLU6``, ``Hardtanh(0, a)``, ``clamp(0, a)``) becomes one of these, the
    place where activation statistics are collected before it is replaced by an IF neuron.

    Args:
        upper: the upper clip (``inf`` for plain ReLU).
        op: the original operation, for the report.
        source: the source line of the original operation, for the report.
    """

    def __init__(self, upper: float = math.inf, op: str = "relu", source: str | None = None):
        super().__init__()
        if not upper > 0:
            raise ValueError(f"upper clip of a ReLU-style activation must be positive, got {upper}")
        self.upper = float(upper)
        self.op = op
        self.source = source

    def forward(self, x: Tensor) -> Tensor:
        if math.isinf(self.upper):
            return torch.relu(x)
        return torch.clamp(x, 0.0, self.upper)

    def extra_repr(self) -> str:
        return f"op={self.op!r}, upper={self.upper:g}"


class ChannelAffine(nn.Module):
    """Fixed per-channel affine map ``x * scale + shift`` along dimension 1 (an inference-mode
    BatchNorm that had no preceding Conv/Linear to fold into).

    Args:
        scale: ``[C]`` factors.
        shift: ``[C]`` offsets.
    """

    def __init__(self, scale: Tensor, shift: Tensor):
        super().__init__()
        if scale.shape != shift.shape or scale.dim() != 1:
            raise ValueError(
                f"scale and shift must be 1-d of equal length, got {tuple(scale.shape)} and "
                f"{tuple(shift.shape)}"
            )
        self.register_buffer("scale", scale.detach().clone())
        self.register_buffer("shift", shift.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        return x * _per_channel(self.scale, x.dim()) + _per_channel(self.shift, x.dim())

    def extra_repr(self) -> str:
        return f"channels={self.scale.numel()}"


class ResidualAdd(nn.Module):
    r"""The sum or difference of time-varying tensors in a converted graph (a residual
    addition): :math:`a + \alpha b` or :math:`a - \alpha b`.

    Addition commutes with time averaging, so the ANN's addition runs unchanged at every step
    (on ``[steps*B, ...]``, or ``[B, ...]`` in the analog network); it is a module rather than a
    function of the graph only so that :class:`snn.energy.OpCounter` can price it (see
    :func:`snn.energy.rules_converted.count_residual_add`): an operand that is spikes is added
    event by event, one accumulate per spike, like a synapse of weight :math:`\vartheta\alpha`
    onto the sum.

    Args:
        op: ``"add"`` or ``"sub"``.

    ``forward(a, b, alpha=1)`` takes the operands of the original call (tensors or numbers).
    """

    def __init__(self, op: str = "add"):
        super().__init__()
        if op not in ("add", "sub"):
            raise ValueError(f"op must be 'add' or 'sub', got {op!r}")
        self.op = op

    def forward(self, a: Tensor | float, b: Tensor | float, alpha: float = 1) -> Tensor:
        if alpha != 1:
            b = b * alpha
        return a + b if self.op == "add" else a - b  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return f"op={self.op!r}"


class IFActivation(nn.Module):
    r"""An IF neuron standing in for a ReLU-style activation.

    The neuron (:class:`snn.IF`, reset by subtraction) has threshold :math:`\vartheta` and
    emits spikes of amplitude :math:`\vartheta`, so its mean output over time approximates the
    ANN activation :math:`\operatorname{clip}(a, 0, \vartheta)` in the ANN's own units (the
    same as scaling the next layer's weights by :math:`\vartheta`, the classic weight
    normalisation, but it keeps residual additions and concatenations consistent). The neuron
    itself works in units of the threshold: it integrates :math:`x/\vartheta` against threshold 1
    (so it is a plain ``IF(threshold=1.0)`` any backend runs), which is the same dynamics. Over
    ``T`` steps with a constant input :math:`x` and initial membrane :math:`v_0`, the mean output
    is :math:`\vartheta\lfloor (v_0 + T x)/\vartheta \rfloor / T`, within
    :math:`\vartheta/(2T)` of :math:`\operatorname{clip}(x, 0, \vartheta)` when
    :math:`v_0 = \vartheta/2`.

    Args:
        threshold: :math:`\vartheta`, a positive scalar tensor (layer-wise) or one value per
            channel of shape ``param_shape``.
        param_shape: shape of per-channel quantities broadcast against one step ``[B, C, ...]``,
            ``(C, 1, ...)`` (``(N,)`` after a Linear).
        v_init: initial membrane potential, ``param_shape`` or scalar, in absolute units.
        levels: quantisation levels of a QCFS activation this neuron replaces (its analog
            counterpart is then the QCFS function), ``None`` for ReLU.
        shift: the QCFS shift :math:`\varphi` (only with ``levels``).

    Buffers:
        bias: a constant current added at every step (set by :func:`snn.converters.calibrate`).

    For :class:`snn.energy.OpCounter`: the output is events of a fixed amplitude per channel
    (``fixed_amplitude_events``), priced as accumulates in the next layer; the arithmetic of
    this wrapper is folded (``folded_functions``), the neuron inside is counted.
    """

    fixed_amplitude_events = True
    folded_functions = MappingProxyType({
        "add": "the bias current, added with the input in the neuron update",
        "div": "input and initial membrane in units of the threshold: the same as a neuron "
        "with threshold theta",
        "mul": "spike amplitude theta, folded into the next layer's weights",
    })

    def __init__(
        self,
        threshold: Tensor,
        param_shape: tuple[int, ...],
        v_init: Tensor | float = 0.0,
        levels: int | None = None,
        shift: float = 0.5,
    ):
        super().__init__()
        threshold = torch.as_tensor(threshold, dtype=torch.float32).detach().clone()
        if not bool((threshold > 0).all()) or not bool(torch.isfinite(threshold).all()):
            raise ValueError("IFActivation thresholds must be positive and finite")
        if threshold.dim() and tuple(threshold.shape) != tuple(param_shape):
            raise ValueError(
                f"threshold shape {tuple(threshold.shape)} does not match {tuple(param_shape)}"
            )
        self.param_shape = tuple(param_shape)
        self.levels = levels
        self.shift = float(shift)
        self.register_buffer("threshold", threshold)
        v0 = torch.as_tensor(v_init, dtype=torch.float32).expand(self.param_shape).clone()
        self.register_buffer("v_init", v0)
        self.register_buffer("bias", torch.zeros(self.param_shape))
        self.neuron = IF(threshold=1.0, reset="subtract")

    def analog(self, x: Tensor) -> Tensor:
        """The ANN activation the neuron approximates (no calibration terms)."""
        theta = self.threshold
        if self.levels is None:
            return torch.minimum(torch.relu(x), theta)
        q = torch.floor(x * self.levels / theta + self.shift) / self.levels
        return theta * torch.clamp(q, 0.0, 1.0)

    def forward(self, x: Tensor, steps: int | None = None) -> Tensor:
        """``x``: ``[steps*B, ...]`` (time folded into the batch), or ``[B, ...]`` with
        ``steps=None`` for the analog activation."""
        if steps is None:
            return self.analog(x)
        theta = self.threshold
        seq = (x.unflatten(0, (steps, -1)) + self.bias) / theta
        state = None
        if self.neuron.state is None:
            v0 = (self.v_init / theta).to(seq.dtype)
            state = LIFState(v0.expand_as(seq[0]).clone())
        spikes = self.neuron(seq, state)
        return (spikes * theta).flatten(0, 1)

    def extra_repr(self) -> str:
        theta = self.threshold
        th = f"{float(theta):.4g}" if theta.dim() == 0 else f"per-channel{tuple(theta.shape)}"
        parts = [f"threshold={th}"]
        if self.levels is not None:
            parts.append(f"levels={self.levels}")
        return ", ".join(parts)


class MaxPoolState(NamedTuple):
    """State of :class:`SpikingMaxPool`.

    Attributes:
        total: running sum of the inputs, ``[B, C, ...]``.
        pooled: max-pool of ``total`` (the output emitted so far), ``[B, C, ...']``.
    """

    total: Tensor
    pooled: Tensor


class SpikingMaxPool(BaseNeuron):
    r"""Max pooling for spike trains: the output follows the most active input so far.

    With :math:`S_j(t)` the running sum of input :math:`j` of a pooling window, the output at
    step :math:`t` is

    .. math:: o_t = \max_j S_j(t) - \max_j S_j(t-1),

    so the output accumulated up to any :math:`t` equals the largest accumulated input, and its
    mean over time is exactly the max-pool of the inputs' mean rates, the ANN's max pooling in
    rate space. Because every :math:`S_j` grows by at most one spike per step, when the input is
    the spike train of one neuron layer (amplitude :math:`\vartheta`) the output is itself a
    spike train of that amplitude: the unit fires whenever the running count of its most active
    input passes its own. Taking the maximum of the spikes at each step instead would
    overestimate (it fires if any input fires), and gating by an estimated rate lags behind.

    Args:
        pool: the ANN pooling module (``nn.MaxPool1d/2d/3d`` or ``nn.AdaptiveMaxPool1d/2d/3d``).

    For :class:`snn.energy.OpCounter` (``preserves_events``): the output is events of the input's
    amplitude when the input is such events, at most one per element and step.
    """

    spiking = False
    preserves_events = True

    def __init__(self, pool: nn.Module):
        super().__init__()
        if getattr(pool, "return_indices", False):
            raise ValueError("max pooling with return_indices=True cannot be converted")
        self.pool = pool

    def neuron_params(self) -> dict:
        return {}

    def forward(self, x: Tensor, steps: int | None = None) -> Tensor:  # type: ignore[override]
        """``x``: ``[steps*B, ...]``, or ``[B, ...]`` with ``steps=None`` (plain max pool)."""
        if steps is None:
            return self.pool(x)
        seq = x.unflatten(0, (steps, -1))
        total = torch.cumsum(seq, 0)
        if self.state is not None:
            total = total + self.state.total
            previous = self.state.pooled
        else:
            previous = None
        pooled = self.pool(total.flatten(0, 1)).unflatten(0, (steps, -1))
        first = pooled[:1] if previous is None else pooled[:1] - previous
        out = torch.cat([first, pooled[1:] - pooled[:-1]], 0)
        self.state = MaxPoolState(total[-1], pooled[-1])
        return out.flatten(0, 1)

