r"""Counting rules for the sequence blocks of :mod:`snn.layers.lmu` and :mod:`snn.layers.rwkv`,
registered into :data:`snn.energy.rules.RULES`.

Each rule prices the module's *own* arithmetic; its child layers (the ``nn.Linear``
projections, neurons, norms) are counted by their own rules. Counts are per element of the
module's input, ``E = T * B * D`` for a sequence (``B * D`` for one step):

- :class:`~snn.layers.LegendreMemory` (order :math:`d`, input ``[T, B, C]``): per step and
  channel, :math:`\bar A m` is :math:`d` multiply-accumulates (MACs) per nonzero element of the
  graded memory entering the step (:math:`d^2` once the memory is full), and :math:`\bar B u`
  is :math:`d` operations per nonzero :math:`u`, accumulates (ACs) when :math:`u` is spikes
  (LMUFormer's spiking :math:`u`), MACs otherwise. Dense: :math:`d^2 + d` MACs per step and
  channel. (The FFT used to compute a sequence in parallel
  is an implementation choice; the count is that of the recurrence, as a streaming processor
  runs it.)
- :class:`~snn.layers.SpikingTimeMix`: token shift, :math:`\mu x_t + (1-\mu)x_{t-1}` for
  :math:`r, k, v`: 2 multiply-adds each, 6 per element (:math:`1-\mu` is a constant). The WKV
  recurrence in its RNN form, per element: :math:`e^{u}e^{k_t}` (1), :math:`a + e^{u+k_t}v_t`
  (1), the division (1), :math:`\sigma(r)\cdot wkv` (1), :math:`e^{-w}a + e^{k_t}v_t` (2),
  :math:`e^{-w}b + e^{k_t}` (1): 7 ``other_macs``, and :math:`b + e^{u+k_t}` one
  ``other_adds``. Total 13 ``other_macs`` and 1 ``other_adds`` per element. The two
  transcendental functions per element (:math:`e^{k_t}` and the sigmoid) have no category
  here and are not priced (``reason`` says so), nor are the comparisons of the running maximum
  that keeps the recurrence finite in floating point.
- :class:`~snn.layers.SpikingChannelMix` (hidden width :math:`H`): token shift for :math:`r, k`,
  4 ``other_macs`` per element; the squared ReLU, one comparison (``other_adds``) and one
  multiply (``other_macs``) per hidden element (:math:`E H / D` of them); the gate
  :math:`\sigma(r)\cdot(W_v k)`, one multiply per element. The sigmoid is not priced.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from snn.energy.counts import LayerCounts
from snn.energy.rules import _activity
from snn.energy.rules import _first_tensor as _input

__all__ = ["SEQUENCE_RULES", "count_channel_mix", "count_legendre_memory", "count_time_mix"]


def _previous_memory(module: nn.Module, u: Tensor, m: Tensor) -> Tensor:
    """The memory entering each step, ``[T, B, C, d]``: the call's output shifted by one step,
    and for the first step the carried state, recovered from
    :math:`\bar A m_{-1} = m_0 - \bar B u_0` (:math:`\bar A = e^{A dt/\theta}` is invertible)."""
    a_bar = module.A_bar.to(torch.float64)
    b_bar = module.B_bar.to(torch.float64)
    first = m[0].to(torch.float64) - u[0].to(torch.float64).unsqueeze(-1) * b_bar
    start = torch.linalg.solve(a_bar, first.reshape(-1, a_bar.shape[0]).T).T
    return torch.cat([start.reshape(first.shape).unsqueeze(0), m[:-1].to(torch.float64)])


def count_legendre_memory(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                          ctx: Any) -> None:
    """:class:`~snn.layers.LegendreMemory`: ``d`` MACs per nonzero element of the memory
    entering a step (:math:`\bar A m`), and ``d`` ACs (spike input) or MACs per nonzero input
    (:math:`\bar B u`). Dense: ``d^2 + d`` MACs per step and channel."""
    u = _input(inputs)
    d = module.order
    seq_u, seq_m = (u.unsqueeze(0), out.unsqueeze(0)) if u.dim() == 2 else (u, out)
    prev = _previous_memory(module, seq_u, seq_m)
    tol = 1e-6 * max(1.0, float(seq_m.abs().max())) if seq_m.numel() else 0.0
    recurrent = int((prev.abs() > tol).sum()) * d
    events = ctx.event_counts(u)
    nnz = int(torch.count_nonzero(u)) if events is None else int(events.sum())
    counts.macs += recurrent
    if events is not None:
        counts.acs += nnz * d
        counts.reason = "spike input: B u accumulates; A m multiply-accumulates (graded memory)"
    else:
        counts.macs += nnz * d
    dense = u.numel() * (d * d + d)
    counts.dense_macs += dense
    counts.dense_synops += dense
    counts.weight_reads += recurrent + nnz * d
    counts.input_reads += nnz + recurrent // d  # the spikes, and the nonzero memory read
    counts.state_reads += u.numel() * d
    counts.state_writes += u.numel() * d
    counts.output_writes += out.numel()
    _activity(counts, u, out)


def _elementwise(counts: LayerCounts, x: Tensor, out: Any, macs: int, adds: int) -> None:
    counts.other_macs += macs
    counts.dense_other_macs += macs
    counts.other_adds += adds
    counts.dense_other_adds += adds
    counts.input_reads += x.numel()
    counts.output_writes += out.numel() if isinstance(out, Tensor) else 0
    _activity(counts, x, out)


def count_time_mix(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                   ctx: Any) -> None:
    """:class:`~snn.layers.SpikingTimeMix`: 13 multiply-adds and 1 add per element (token
    shift and the WKV recurrence); the projections are counted as ``nn.Linear``."""
    x = _input(inputs)
    e = x.numel()
    _elementwise(counts, x, out, 13 * e, e)
    counts.state_reads += 3 * e  # a, b and the previous token
    counts.state_writes += 3 * e
    counts.reason = "two exponentials per element (e^k, sigmoid) not priced"


def count_channel_mix(counts: LayerCounts, module: nn.Module, inputs: tuple, out: Any,
                      ctx: Any) -> None:
    """:class:`~snn.layers.SpikingChannelMix`: 5 multiply-adds per element plus a comparison
    and a multiply per hidden element; the projections are counted as ``nn.Linear``."""
    x = _input(inputs)
    e = x.numel()
    hidden = e * module.key.out_features // module.dim
    _elementwise(counts, x, out, 5 * e + hidden, hidden)
    counts.state_reads += e  # the previous token
    counts.state_writes += e
    counts.reason = "the sigmoid (one per element) not priced"


def _rules() -> dict[type, tuple[str, Any]]:
    from snn.layers.lmu import LegendreMemory
    from snn.layers.rwkv import SpikingChannelMix, SpikingTimeMix

    return {
        LegendreMemory: ("synaptic", count_legendre_memory),
        SpikingTimeMix: ("activation", count_time_mix),
        SpikingChannelMix: ("activation", count_channel_mix),
    }


SEQUENCE_RULES = _rules()
"""Module class -> (kind, rule) for the LMU and RWKV blocks."""
