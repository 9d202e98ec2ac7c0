"""Batching of variable-length samples with padding masks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def pad_sequences(
    items: Sequence[Any], pad_value: float = 0.0, time_first: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack sequences of different lengths along a new batch axis.

    Args:
        items: Tensors or arrays ``[T_i, ...]`` with equal trailing shapes, or structured event
            arrays (each becomes ``[N_i, F]`` float64 over its fields, in field order).
        pad_value: Value of padded positions.
        time_first: Return ``[T_max, B, ...]`` (the project's convention) instead of
            ``[B, T_max, ...]``.

    Returns:
        ``(padded, mask)`` with ``mask[t, b]`` (or ``[b, t]``) True at real positions.

    Raises:
        ValueError: empty batch or mismatched trailing shapes.
    """
    if len(items) == 0:
        raise ValueError("pad_sequences needs at least one item")
    tensors = [_as_tensor(x) for x in items]
    tail = tensors[0].shape[1:]
    for i, t in enumerate(tensors):
        if t.shape[1:] != tail:
            raise ValueError(
                f"item {i} has trailing shape {tuple(t.shape[1:])}, item 0 has {tuple(tail)}"
            )
    lengths = torch.tensor([t.shape[0] for t in tensors])
    t_max = int(lengths.max())
    dtype = tensors[0].dtype
    out = torch.full((len(tensors), t_max, *tail), pad_value, dtype=dtype)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
    mask = torch.arange(t_max)[None, :] < lengths[:, None]
    if time_first:
        return out.transpose(0, 1).contiguous(), mask.transpose(0, 1).contiguous()
    return out, mask


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    x = np.asarray(x)
    if x.dtype.names:
        return torch.from_numpy(
            np.stack([x[name].astype(np.float64) for name in x.dtype.names], axis=-1)
            if x.size
            else np.zeros((0, len(x.dtype.names)))
        )
    return torch.from_numpy(np.ascontiguousarray(x))


class PadCollate:
    """``collate_fn`` for ``(data, target)`` samples of different lengths.

    Returns ``(padded, mask, targets)``: see :func:`pad_sequences`; ``targets`` is a tensor
    when targets are numbers, otherwise the list.
    """

    def __init__(self, pad_value: float = 0.0, time_first: bool = True) -> None:
        self.pad_value = pad_value
        self.time_first = time_first

    def __call__(self, batch: Sequence[tuple[Any, Any]]) -> tuple[torch.Tensor, ...]:
        data, targets = zip(*batch)
        padded, mask = pad_sequences(data, self.pad_value, self.time_first)
        if all(isinstance(t, int | np.integer | float) for t in targets):
            return padded, mask, torch.as_tensor(np.asarray(targets))
        return padded, mask, list(targets)


#: Default instance: zero padding, time-first output.
pad_collate = PadCollate()
