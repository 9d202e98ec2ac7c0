"""Turning the data arguments of the converter into batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from torch import Tensor

__all__ = ["input_batches", "labelled_batches"]


def _first(item: Any, what: str) -> Tensor:
    if isinstance(item, Tensor):
        return item
    if isinstance(item, (tuple, list)) and item and isinstance(item[0], Tensor):
        return item[0]
    raise TypeError(f"{what} must yield tensors or (input, ...) tuples, got {type(item).__name__}")


def input_batches(data: Any, batch_size: int = 256, what: str = "calibration_data") -> list[Tensor]:
    """Input batches ``[B, ...]`` from a tensor (split into batches), a ``(inputs, labels)``
    pair of tensors, or an iterable (a DataLoader) of tensors or ``(input, ...)`` tuples.

    Raises:
        TypeError: for anything else.
        ValueError: when there is no data.
    """
    if isinstance(data, Tensor):
        batches = list(data.split(batch_size)) if data.dim() else []
    elif (isinstance(data, (tuple, list)) and len(data) == 2
          and all(isinstance(d, Tensor) for d in data) and data[0].shape[:1] == data[1].shape[:1]):
        batches = list(data[0].split(batch_size))
    elif isinstance(data, Iterable):
        batches = [_first(item, what) for item in data]
    else:
        raise TypeError(f"{what} must be a tensor or an iterable of batches, got "
                        f"{type(data).__name__}")
    if not batches or any(b.dim() == 0 or b.shape[0] == 0 for b in batches):
        raise ValueError(f"{what} holds no samples")
    return batches


def labelled_batches(data: Any, batch_size: int = 256) -> Iterator[tuple[Tensor, Tensor]]:
    """``(inputs, labels)`` batches from a ``(inputs, labels)`` pair of tensors or an iterable
    of ``(input, label, ...)`` batches.

    Raises:
        TypeError: for anything else.
    """
    if (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(d, Tensor) for d in data)):
        x, y = data
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"inputs ({x.shape[0]}) and labels ({y.shape[0]}) differ in length")
        yield from zip(x.split(batch_size), y.split(batch_size))
        return
    if not isinstance(data, Iterable):
        raise TypeError(f"data must be (inputs, labels) tensors or an iterable of batches, got "
                        f"{type(data).__name__}")
    for item in data:
        if not (isinstance(item, (tuple, list)) and len(item) >= 2
                and isinstance(item[0], Tensor) and isinstance(item[1], Tensor)):
            raise TypeError("data must yield (input, label) batches of tensors")
        yield item[0], item[1]
