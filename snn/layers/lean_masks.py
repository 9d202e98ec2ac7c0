r"""Masks and column sums of spikes (the Spike-driven Transformer's SDSA, QKFormer's Q-K
attention) keeping their operands packed for the backward pass, with gradients equal bit for
bit to the plain products (see :mod:`snn.layers.lean`, whose conditions and storage they
share).

``a * b`` keeps float copies of both operands for backward; SDSA's column sum
:math:`\mathrm{SUM}_c(K \otimes V)` and its mask :math:`Q \otimes (\cdot)` thus keep
:math:`Q, K, V` as float32 (12 bytes per token feature). Here they are kept in 1 bit each
(anything that is not spikes or small counts as it is), and the backward applies autograd's
own formulas: the product rule, the sum's expansion and the broadcast operand's reduction
(``at::sum_to``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from snn.layers.lean import _grad_context, _restore_packed, _save_packed

__all__ = ["spike_mask", "spike_product_sum"]


class _ProductSum(torch.autograd.Function):
    """``(a * b).sum(dim, keepdim=True)`` keeping ``a`` and ``b`` packed."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, dim: int) -> Tensor:
        out = (a * b).sum(dim, keepdim=True)
        _save_packed(ctx, a, b)
        ctx.shape = a.shape
        return out

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Any, ...]:
        a, b = _restore_packed(ctx)
        g = g.expand(ctx.shape)  # through the sum, as autograd does
        needs = ctx.needs_input_grad
        return g * b if needs[0] else None, g * a if needs[1] else None, None


def spike_product_sum(a: Tensor, b: Tensor, dim: int) -> Tensor | None:
    """``(a * b).sum(dim, keepdim=True)`` (SDSA's column sum of ``K * V``) keeping the
    operands packed, or ``None`` where the lean path does not apply (operands of different
    shapes, no gradient wanted, saved-tensor hooks active)."""
    if (not _grad_context() or a.shape != b.shape or a.dtype != b.dtype
            or not (a.requires_grad or b.requires_grad)):
        return None
    return _ProductSum.apply(a, b, int(dim))


class _Mask(torch.autograd.Function):
    """``mask * x`` (``mask`` broadcast over ``x``) keeping both packed."""

    @staticmethod
    def forward(ctx: Any, mask: Tensor, x: Tensor) -> Tensor:
        out = mask * x
        _save_packed(ctx, mask, x)
        ctx.shapes = (mask.shape, x.shape)
        return out

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Any, ...]:
        mask, x = _restore_packed(ctx)
        needs = ctx.needs_input_grad
        # autograd's product rule, then its reduction of a broadcast operand (at::sum_to)
        gm = (g * x).sum_to_size(ctx.shapes[0]) if needs[0] else None
        gx = (g * mask).sum_to_size(ctx.shapes[1]) if needs[1] else None
        return gm, gx


def spike_mask(mask: Tensor, x: Tensor) -> Tensor | None:
    """``mask * x`` for a ``mask`` that broadcasts to ``x``'s shape (SDSA's and QKFormer's
    masks), keeping both packed, or ``None`` where the lean path does not apply."""
    if (not _grad_context() or mask.dim() != x.dim() or mask.dtype != x.dtype
            or torch.broadcast_shapes(mask.shape, x.shape) != x.shape
            or not (mask.requires_grad or x.requires_grad)):
        return None
    return _Mask.apply(mask, x)
