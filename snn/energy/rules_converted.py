r"""Counting rules for the transformer modules of converted networks
(:mod:`snn.converters.expectation`), registered into :data:`snn.energy.rules.RULES`.

Both modules run on time folded into the batch: their inputs are ``[steps*B, ...]`` and
``steps`` is passed as an argument (positional for the neuron, keyword for the expectation
module), so one call covers every step.

- :class:`~snn.converters.expectation.SignedIFActivation` (multi-threshold signed neuron): like
  any neuron, one update per input element and step (one state variable: the membrane), active
  when the input is nonzero; its spikes are its nonzero outputs (signed, of one of ``2n``
  fixed amplitudes), one write each.
- :class:`~snn.converters.expectation.Expectation`, a **product of two activations** (the
  spike-driven matrix product of Huang et al. 2024): with :math:`P_t = S^A_t S^B_t`,
  :math:`P_t = P_{t-1} + a_t S^B_{t-1} + S^A_{t-1} b_t + a_t b_t`. Every nonzero element of
  :math:`a_t` (an event) adds a row of :math:`S^B` into its outputs, every nonzero element of
  :math:`b_t` a column of :math:`S^A`, and every pair of nonzero :math:`a_t, b_t` elements
  meeting in the product one more term: all accumulates (``acs``), whatever the spike
  amplitudes (a fixed amplitude is a shift or a constant factor applied once). Dense
  counterpart (``dense_synops`` and ``dense_macs``): the ANN's product,
  :math:`n k m` multiply-adds per step. Keeping the running sums costs one add per nonzero input
  element, and the output :math:`o_t = P_t/t - P_{t-1}/(t-1)` one multiply-add and one add per
  output element (``other_macs``, ``other_adds``).
- :class:`~snn.converters.expectation.Expectation`, a **non-linear operation** :math:`f`
  (LayerNorm, GELU, SiLU, softmax, ...): one add per nonzero input element (the running sum),
  one multiply per input element (the running mean), and per output element one multiply
  (:math:`t f(\cdot)`) and one add (the difference with the previous total). The evaluation of
  :math:`f` itself on the running mean is the ANN's own work and is left to :math:`f`'s rule
  (the wrapped module is a child of the expectation module and is counted as such where a
  rule for it exists; functions are not priced): ``reason`` says so.
- :class:`~snn.converters.ResidualAdd`, an **addition of time-varying values** (the residual
  additions of a converted ResNet, ``a + alpha*b`` or ``a - alpha*b``), kind ``"elementwise"``.
  The sum is built on one graded operand (a convolution's output current, or zero when every
  operand is spikes); an operand that is *events* (spikes, by the counter's event rules of
  :mod:`snn.energy.rules`) is added event by event: **one accumulate per event** and per output
  element it reaches (a broadcast operand reaches several), like a synapse of weight
  :math:`\vartheta\alpha` onto the sum, with that synapse's memory traffic (the event read,
  the weight read, a read and a write of the sum). Every further graded operand (a second
  current, a constant) costs one addition per output element. The counts go to
  ``other_adds`` (priced as accumulates, ``ac``), not to the synaptic operations ``acs``: like
  NeuroBench, a residual addition is not a synaptic operation, so the NeuroBench metrics are
  unchanged. Dense counterpart (the ANN's addition): one addition per output element and extra
  operand (``dense_other_adds``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from snn.converters.expectation import Expectation, SignedIFActivation
from snn.converters.modules import ResidualAdd
from snn.energy.counts import LayerCounts
from snn.energy.rules import Rule, RuleContext, _activity

__all__ = ["CONVERTED_RULES", "count_expectation", "count_residual_add", "count_signed_neuron"]


def _steps(inputs: tuple, position: int) -> int | None:
    if len(inputs) > position and isinstance(inputs[position], int):
        return inputs[position]
    return None


def count_signed_neuron(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                        ctx: RuleContext) -> None:
    """A signed multi-threshold neuron on ``[steps*B, ...]`` (see the module docstring)."""
    x = inputs[0]
    steps = _steps(inputs, 1)
    updates = x.numel()
    counts.state_vars = 1
    counts.neuron_updates += updates
    counts.active_updates += int(torch.count_nonzero(x))
    counts.state_reads += updates
    counts.state_writes += updates
    if steps is None:  # the analog activation (a clip): two comparisons per element
        counts.reason = "analog (steps=None): clip(x, -threshold, threshold)"
        counts.other_adds += 2 * x.numel()
        counts.dense_other_adds += 2 * x.numel()
    else:
        spikes = int(torch.count_nonzero(out))
        counts.spikes += spikes
        counts.output_writes += spikes
        ctx.neuron_calls.append((False, steps, x.shape[0] // steps, id(module)))
    _activity(counts, x, out)


def _product_counts(a: Tensor, b: Tensor, matmul: bool) -> tuple[int, int]:
    """``(accumulates of the spike-driven product, dense multiply-adds)`` over all steps."""
    na, nb = (a != 0).double(), (b != 0).double()
    if matmul:
        pairs = int(torch.matmul(na, nb).sum())
        rows = int(torch.matmul(na, torch.ones_like(nb)).sum())  # nnz(a) x columns of b
        cols = int(torch.matmul(torch.ones_like(na), nb).sum())  # nnz(b) x rows of a
        dense = int(torch.matmul(torch.ones_like(na), torch.ones_like(nb)).sum())
    else:
        na, nb = torch.broadcast_tensors(na, nb)
        pairs, rows, cols = int((na * nb).sum()), int(na.sum()), int(nb.sum())
        dense = na.numel()
    return pairs + rows + cols, dense


def count_expectation(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                      ctx: RuleContext) -> None:
    """An expectation-compensation module (see the module docstring)."""
    dynamic = [inputs[i] for i in module.dynamic if i < len(inputs)
               and isinstance(inputs[i], Tensor)]
    last = inputs[-1] if inputs else None  # ``steps`` is the last keyword of the call
    steps = last if isinstance(last, int) and not isinstance(last, bool) else None
    if not dynamic or not isinstance(out, Tensor):
        counts.kind = "uncounted"
        counts.reason = "called without its time-varying inputs"
        return
    if steps is None:
        counts.reason = "analog (steps=None): the operation itself, not priced"
        _activity(counts, dynamic[0], out)
        return
    nnz = sum(int(torch.count_nonzero(x)) for x in dynamic)
    counts.other_adds += nnz + out.numel()  # running sums; difference of totals
    if len(dynamic) == 2:
        fn = module.fn
        name = fn if isinstance(fn, str) else getattr(fn, "__name__", "")
        acs, dense = _product_counts(dynamic[0], dynamic[1], name in ("matmul", "bmm"))
        counts.acs += acs
        counts.dense_synops += dense
        counts.dense_macs += dense
        counts.state_reads += acs
        counts.state_writes += acs
        counts.other_macs += out.numel()  # P_t / t
        counts.input_reads += nnz
    else:
        counts.other_macs += sum(x.numel() for x in dynamic) + out.numel()  # mean; t f(mean)
        counts.reason = (f"running mean and compensation of {module.op}; the evaluation of the "
                         "operation itself is left to its own rule")
        counts.input_reads += sum(x.numel() for x in dynamic)
    counts.dense_other_macs += out.numel()
    counts.output_writes += out.numel()
    _activity(counts, dynamic[0], out)


def count_residual_add(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                       ctx: RuleContext) -> None:
    """A :class:`~snn.converters.ResidualAdd` (see the module docstring)."""
    if not isinstance(out, Tensor):
        counts.kind = "uncounted"
        counts.reason = "did not return a tensor"
        return
    operands = inputs[:2]  # (a, b); a third input is alpha
    n = out.numel()
    graded = 0
    for x in operands:
        events = ctx.event_counts(x) if isinstance(x, Tensor) else None
        if events is None:
            graded += 1
            if isinstance(x, Tensor):
                counts.input_reads += n
            continue
        reached = int(torch.broadcast_to(events, out.shape).sum(dtype=torch.int64))
        counts.other_adds += reached
        counts.input_reads += int(events.sum(dtype=torch.int64))
        counts.weight_reads += reached
        counts.state_reads += reached
        counts.state_writes += reached
    counts.other_adds += max(graded - 1, 0) * n
    if graded:
        counts.output_writes += n
    counts.dense_other_adds += (len(operands) - 1) * n
    first = next((x for x in operands if isinstance(x, Tensor)), out)
    _activity(counts, first, out)


CONVERTED_RULES: dict[type, tuple[str, Rule]] = {
    SignedIFActivation: ("neuron", count_signed_neuron),
    Expectation: ("expectation", count_expectation),
    ResidualAdd: ("elementwise", count_residual_add),
}
"""Rules of the converted transformer modules, merged into :data:`snn.energy.rules.RULES`."""
