"""Converting a network of a million parameters takes seconds."""

from __future__ import annotations

import time

import torch
from torch import nn

from snn.converters import convert


def test_one_million_parameters_convert_in_seconds() -> None:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

    model = nn.Sequential(
        *block(3, 64), *block(64, 64), nn.MaxPool2d(2),
        *block(64, 128), *block(128, 128), nn.MaxPool2d(2),
        *block(128, 256), *block(256, 256), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(256, 10),
    ).eval()
    n_params = sum(p.numel() for p in model.parameters())
    assert 1_000_000 <= n_params <= 1_500_000
    x = torch.rand(32, 3, 16, 16)
    start = time.perf_counter()
    net, report = convert(model, x, channelwise=True)
    seconds = time.perf_counter() - start
    assert len(net.neurons()) == 6
    assert seconds < 20.0, f"conversion took {seconds:.1f} s ({report.passes})"
