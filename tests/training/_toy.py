"""A small learnable sequence task and SNN shared by the training tests (and the distributed
worker script, which imports this file by path)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

import snn
from snn.models import TimeConsistentDropout


def toy_data(n: int = 64, steps: int = 6, features: int = 8, seed: int = 0) -> TensorDataset:
    """Spike trains ``[n, T, F]``: class 1 fires mostly on the first half of the channels,
    class 0 on the second half."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    rate = torch.full((n, 1, features), 0.1)
    half = features // 2
    rate[y == 1, :, :half] = 0.6
    rate[y == 0, :, half:] = 0.6
    x = (torch.rand((n, steps, features), generator=g) < rate).float()
    return TensorDataset(x, y)


def toy_model(seed: int = 0, dropout: float = 0.2, features: int = 8) -> nn.Module:
    torch.manual_seed(seed)
    layers = [
        snn.TimeDistributed(nn.Linear(features, 16)),
        snn.ParametricLIF(beta=0.7, decay_input=False),
    ]
    if dropout:
        layers.append(TimeConsistentDropout(dropout))
    layers += [snn.TimeDistributed(nn.Linear(16, 2)), snn.LI(beta=0.8)]
    return nn.Sequential(*layers)
