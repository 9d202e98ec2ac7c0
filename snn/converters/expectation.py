r"""Transformer conversion: expectation compensation and multi-threshold signed neurons.

Implements the conversion of Huang, Shi, Hao, Bu, Ding, Yu and Huang, "Towards
High-performance Spiking Transformers from ANN to SNN Conversion", ACM Multimedia 2024
(arXiv:2502.21193):

- **Expectation compensation** (their ECM): a non-linear operation :math:`f` (LayerNorm, GELU,
  SiLU, softmax, ...) or the product of two activations receives, at step :math:`t`, the
  spike-driven input :math:`x_t`; it keeps the running sum :math:`S_t=\sum_{k\le t}x_k` and
  emits

  .. math:: o_t = t\,f\!\left(\frac{S_t}{t}\right) - (t-1)\,f\!\left(\frac{S_{t-1}}{t-1}\right),

  so that the sum of its outputs over the first :math:`t` steps is :math:`t\,f(\bar x_t)`:
  the mean output *is* :math:`f` of the mean input at every step, the expected output the
  paper compensates for. A product of two activations :math:`A B` (attention's
  :math:`QK^\top` and :math:`\mathrm{softmax}\cdot V`, gating) is the case
  :math:`f(A, B) = AB`; with :math:`P_t = S^A_t S^B_t` its output is
  :math:`P_t/t - P_{t-1}/(t-1)`, where
  :math:`P_t = P_{t-1} + a_t S^B_{t-1} + S^A_{t-1} b_t + a_t b_t` needs only additions when
  :math:`a_t, b_t` are spikes (the paper's spike-driven matrix product; the energy rules count
  it that way).
- **Multi-threshold neurons** (their MT neuron): a signed neuron with :math:`n` pairs of
  thresholds :math:`\pm\theta/2^{i}`, :math:`i=0..n-1`, emitting at most one spike per step of
  one of the :math:`2n` amplitudes, so that one step carries :math:`n` bits of the value and
  negative values (the residual stream, LayerNorm outputs, queries and keys) pass.

Readings taken where the paper leaves room: the neuron fires the amplitude nearest to its
membrane and subtracts it (reset by subtraction, membrane starting at 0); the finest amplitude
fires from half of it on (rounding, the signed counterpart of starting a ReLU neuron at half its
threshold), which keeps positive and negative inputs equally unbiased. One threshold
per layer (the maximum magnitude, or the percentile of the magnitudes, of its calibration
activations); the paper's parallel parameter normalisation folds the same scale into the next
layer's weights, which we keep in the spike amplitude instead (the same arithmetic). The
expectation of a product is taken over both operands' running means (the paper's matrix-product
formula), not only the newest step.

Every module here runs on time folded into the batch (``[steps*B, ...]``) and takes ``steps``;
with ``steps=None`` it computes its ANN counterpart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from snn.neurons.base import BaseNeuron

__all__ = [
    "Expectation",
    "ExpectationState",
    "SignedIFActivation",
    "SignedSite",
]


class SignedSite(nn.Module):
    """Where a signed neuron will be placed: the identity while statistics are collected.

    Args:
        op: what it follows or precedes, for the report.
        source: the source line, for the report.
    """

    def __init__(self, op: str = "", source: str | None = None):
        super().__init__()
        self.op = op
        self.source = source

    def forward(self, x: Tensor) -> Tensor:
        return x

    def extra_repr(self) -> str:
        return f"op={self.op!r}"


class ExpectationState(NamedTuple):
    """State of :class:`Expectation`.

    Attributes:
        sums: running sum of each time-varying input, ``[B, ...]`` each.
        count: steps seen so far.
        total: :math:`t\\,f(\\bar x_t)`, the output accumulated so far, ``[B, ...]``.
    """

    sums: tuple[Tensor, ...]
    count: int
    total: Tensor


class Expectation(BaseNeuron):
    r"""Expectation compensation of a non-linear operation or a product (see the module
    docstring): after :math:`t` steps the outputs sum to :math:`t\,f(\bar x_t)`.

    Called as the original operation was, with its time-varying inputs ``[steps*B, ...]`` at
    the positions ``dynamic`` of ``args`` and ``steps`` as a keyword.

    Args:
        fn: the operation: a module (``nn.LayerNorm``, ``nn.GELU``, ...), a function
            (``F.gelu``, ``torch.matmul``, ...) or a tensor method name (``"softmax"``,
            called on ``args[0]``).
        dynamic: positions in ``args`` of the time-varying inputs.
        op: the operation's name, for reports.
    """

    spiking = False

    def __init__(self, fn: nn.Module | Callable[..., Tensor] | str, dynamic: Sequence[int],
                 op: str = ""):
        super().__init__()
        if not (isinstance(fn, (nn.Module, str)) or callable(fn)):
            raise TypeError(f"fn must be a module, a function or a method name, got {fn!r}")
        dynamic = tuple(int(i) for i in dynamic)
        if not dynamic or len(set(dynamic)) != len(dynamic) or min(dynamic) < 0:
            raise ValueError(f"dynamic must list distinct argument positions, got {dynamic}")
        if isinstance(fn, str) and dynamic[0] != 0:
            raise ValueError("a tensor method needs its tensor (position 0) to vary in time")
        self.fn = fn
        self.dynamic = dynamic
        self.op = op

    def neuron_params(self) -> dict:
        return {}

    def _call_fn(self, args: Sequence[Any], kwargs: dict[str, Any]) -> Tensor:
        if isinstance(self.fn, str):
            return getattr(args[0], self.fn)(*args[1:], **kwargs)
        return self.fn(*args, **kwargs)

    def forward(self, *args: Any, steps: int | None = None, **kwargs: Any) -> Tensor:  # type: ignore[override]
        """``args`` as the original operation's, time-varying ones ``[steps*B, ...]`` (or
        ``[B, ...]`` with ``steps=None``: the operation itself)."""
        if steps is None:
            return self._call_fn(args, kwargs)
        state: ExpectationState | None = self.state
        seqs = [args[i].unflatten(0, (steps, -1)) for i in self.dynamic]
        sums = [torch.cumsum(s, 0) for s in seqs]
        if state is not None:
            sums = [s + p for s, p in zip(sums, state.sums)]
        start = 0 if state is None else state.count
        t = torch.arange(start + 1, start + steps + 1, device=seqs[0].device,
                         dtype=seqs[0].dtype)
        means = [s / t.view(-1, *([1] * (s.dim() - 1))) for s in sums]
        call = list(args)
        for i, m in zip(self.dynamic, means):
            call[i] = m.flatten(0, 1)
        value = self._call_fn(call, kwargs).unflatten(0, (steps, -1))
        total = value * t.view(-1, *([1] * (value.dim() - 1)))
        before = torch.zeros_like(total[:1]) if state is None else state.total.unsqueeze(0)
        out = total - torch.cat([before, total[:-1]], 0)
        self.state = ExpectationState(tuple(s[-1] for s in sums), start + steps, total[-1])
        return out.flatten(0, 1)

    def extra_repr(self) -> str:
        return f"op={self.op!r}, inputs={len(self.dynamic)}"


class SignedIFActivation(BaseNeuron):
    r"""Multi-threshold signed IF neuron (the MT neuron; see the module docstring).

    With threshold :math:`\theta` and ``levels`` :math:`n`, the membrane :math:`v` (in units
    of :math:`\theta`, starting at 0) integrates the input; at each step the neuron emits,
    signed as :math:`v`, the amplitude :math:`a_i = 2^{-i}`, :math:`i < n`, nearest to
    :math:`|v|` (the largest with :math:`|v| \ge \tfrac34 a_i`, the midpoint to the next
    smaller one; the finest, :math:`a_{n-1}`, from :math:`|v| \ge a_{n-1}/2` on) as a spike of
    amplitude :math:`\pm a_i\theta`, or nothing, and subtracts it:

    .. math:: v_t = v_{t-1} + x_t/\theta, \quad s_t = \operatorname{sign}(v_t)\,a_t, \quad
              v_t \leftarrow v_t - s_t.

    One step represents :math:`|x| \le \theta` within :math:`\max(|x|/3, 2^{-n}\theta)`;
    with a constant input the mean over :math:`T` steps is within :math:`\theta/(2T)` of
    :math:`x` (the membrane stays within half the largest amplitude). Its ANN counterpart is
    :math:`\operatorname{clip}(x, -\theta, \theta)`.

    Args:
        threshold: :math:`\theta`, a positive scalar.
        levels: :math:`n`, the number of threshold pairs (1: a plain signed IF neuron).
    """

    spiking = True

    def __init__(self, threshold: float | Tensor, levels: int = 4):
        super().__init__()
        theta = torch.as_tensor(threshold, dtype=torch.float32).detach().clone()
        if theta.dim() != 0 or not bool(theta > 0) or not bool(torch.isfinite(theta)):
            raise ValueError(f"SignedIFActivation threshold must be a positive finite scalar, "
                             f"got {threshold!r}")
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be a positive integer, got {levels!r}")
        self.levels = levels
        self.register_buffer("threshold", theta)

    @property
    def fixed_amplitude_events(self) -> bool:
        """For :class:`snn.energy.OpCounter`: with one threshold pair (``levels=1``) every
        spike has amplitude :math:`\\pm\\theta`, events priced as accumulates in the next layer
        (:math:`\\theta` folds into its weights, the sign makes an add a subtract); with more
        pairs the spikes take several amplitudes and count as graded values."""
        return self.levels == 1

    def neuron_params(self) -> dict:
        return {}

    def analog(self, x: Tensor) -> Tensor:
        """The ANN activation the neuron approximates: ``clip(x, -theta, theta)``."""
        return torch.minimum(torch.maximum(x, -self.threshold), self.threshold)

    def forward(self, x: Tensor, steps: int | None = None) -> Tensor:  # type: ignore[override]
        """``x``: ``[steps*B, ...]`` (time folded into the batch), or ``[B, ...]`` with
        ``steps=None`` for the analog activation. Returns spikes of amplitude
        ``±threshold/2**i``, same shape."""
        if steps is None:
            return self.analog(x)
        theta = self.threshold
        seq = x.unflatten(0, (steps, -1)) / theta
        v = torch.zeros_like(seq[0]) if self.state is None else self.state
        out = []
        for step in seq:
            v = v + step
            mag = v.abs()
            s = torch.zeros_like(v)
            for i in range(self.levels):
                a = 2.0 ** -i
                reach = a / 2 if i == self.levels - 1 else 0.75 * a  # nearest amplitude
                s = torch.where((s == 0) & (mag >= reach), a, s)
            s = s * torch.sign(v)
            v = v - s
            out.append(s)
        self.state = v
        return (torch.stack(out) * theta).flatten(0, 1)

    def extra_repr(self) -> str:
        return f"threshold={float(self.threshold):.4g}, levels={self.levels}"
