"""Converting a network of a million parameters takes seconds of CPU time."""

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
    # CPU time of one thread: the work of the conversion, not how busy the machine is (the wall
    # time of this call reached 10 s on a loaded 2-core machine against 3 s of CPU time).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.process_time()
        net, report = convert(model, x, channelwise=True)
        seconds = time.process_time() - start
    finally:
        torch.set_num_threads(threads)
    assert len(net.neurons()) == 6
    assert seconds < 20.0, f"conversion took {seconds:.1f} s of CPU time ({report.passes})"
