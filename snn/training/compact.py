"""Lossless compact storage of spike tensors: binary spikes in 1 bit, small non-negative
integers (spike counts, sums of spike trains as in SEW-ResNet's ADD) in the fewest of 1, 2, 4
or 8 bits their largest value needs.

The packing is exact: :func:`unpack` returns a tensor equal bit for bit to the one packed
(negative zeros, fractions, negative or non-finite values, or values above 255 make
:func:`pack` decline with ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["PackedSpikes", "pack", "unpack"]

_WIDTHS = (1, 2, 4, 8)


@dataclass(frozen=True)
class PackedSpikes:
    """A tensor stored in ``bits`` bits per value.

    Attributes:
        data: ``uint8`` bytes, ``8 // bits`` values per byte.
        bits: bits per value (1, 2, 4 or 8).
        shape: shape of the original tensor.
        dtype: floating dtype of the original tensor.
    """

    data: Tensor
    bits: int
    shape: torch.Size
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        """Bytes held by the packed data."""
        return self.data.numel()


def pack(x: Tensor) -> PackedSpikes | None:
    """Pack ``x`` when its values are small non-negative integers, else return ``None``.

    Args:
        x: a floating tensor of any shape (e.g. spikes ``[T, B, ...]``).
    """
    if not x.is_floating_point() or x.numel() == 0:
        return None
    flat = x.detach().reshape(-1)
    q = flat.to(torch.uint8)
    if not torch.equal(q.to(flat.dtype), flat) or bool(torch.signbit(flat).any()):
        return None
    top = int(q.max())
    bits = next(b for b in _WIDTHS if top < (1 << b))
    per = 8 // bits
    if per > 1:
        pad = (-q.numel()) % per
        if pad:
            q = torch.cat([q, q.new_zeros(pad)])
        lanes = q.view(-1, per)
        packed = lanes[:, 0].clone()
        for i in range(1, per):
            packed |= lanes[:, i] << (bits * i)
        q = packed
    return PackedSpikes(q, bits, x.shape, x.dtype)


def unpack(p: PackedSpikes) -> Tensor:
    """The tensor :func:`pack` stored (same shape, dtype and values)."""
    per = 8 // p.bits
    n = 1
    for s in p.shape:
        n *= s
    if per == 1:
        values = p.data
    else:
        mask = (1 << p.bits) - 1
        shifts = torch.arange(0, 8, p.bits, device=p.data.device, dtype=torch.uint8)
        values = ((p.data.unsqueeze(1) >> shifts) & mask).reshape(-1)[:n]
    return values.to(p.dtype).reshape(p.shape)
