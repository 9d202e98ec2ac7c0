"""Registry of the spiking sequence blocks (time-first ``[T, B, features]`` in, spikes or a
residual stream ``[T, B, out_features]`` out), so that tools and tests can iterate over them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from snn.layers.lmu import SpikingLMU
from snn.layers.rwkv import SpikingRWKVBlock

__all__ = ["SEQUENCE_BLOCKS", "create_sequence_block"]

SEQUENCE_BLOCKS: dict[str, Callable[..., nn.Module]] = {
    "spiking_lmu": lambda features, **kw: SpikingLMU(features, features, **kw),
    "spiking_rwkv": lambda features, **kw: SpikingRWKVBlock(features, **kw),
}
"""Builders by name: ``builder(features, **options)`` returns a block mapping
``[T, B, features]`` to ``[T, B, features]`` (the LMU cell with ``hidden_size = features``)."""


def create_sequence_block(name: str, features: int, **kwargs: Any) -> nn.Module:
    """Build a sequence block by registry name.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    try:
        builder = SEQUENCE_BLOCKS[name]
    except KeyError:
        raise ValueError(
            f"unknown sequence block {name!r}; expected one of {sorted(SEQUENCE_BLOCKS)}"
        ) from None
    return builder(features, **kwargs)
