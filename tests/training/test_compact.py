"""Lossless spike packing (snn/training/compact.py)."""

from __future__ import annotations

import pytest
import torch

from snn.training.compact import pack, unpack


@pytest.mark.parametrize(("top", "bits"), [(1, 1), (3, 2), (15, 4), (255, 8)])
def test_pack_round_trip_uses_fewest_bits(top: int, bits: int) -> None:
    g = torch.Generator().manual_seed(top)
    x = torch.randint(0, top + 1, (3, 5, 7), generator=g).float()
    x.view(-1)[0] = top
    p = pack(x)
    assert p is not None and p.bits == bits
    assert p.nbytes == -(-x.numel() * bits // 8)
    y = unpack(p)
    assert y.dtype == x.dtype and y.shape == x.shape and torch.equal(y, x)


@pytest.mark.parametrize(
    "values", [[0.5, 1.0], [-1.0, 0.0], [256.0], [float("nan")], [-0.0, 1.0], [float("inf")]]
)
def test_pack_declines_values_it_cannot_store_exactly(values: list[float]) -> None:
    assert pack(torch.tensor(values)) is None


def test_pack_declines_integer_tensors() -> None:
    assert pack(torch.ones(4, dtype=torch.int64)) is None
