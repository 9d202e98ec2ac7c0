"""``Monitor(layers=...)`` takes the layer names a converted network's ``neurons()`` gives."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snn.converters import convert
from snn.layers.monitor import Monitor


def test_monitor_accepts_converted_neuron_names() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 3))
    x = torch.rand(16, 4)
    net, _ = convert(model, x, time_chunk=4)
    names = list(net.neurons())
    assert names == ["1", "3"]
    with Monitor(net, layers=names) as mon:
        net(x, steps=8)
    for name in names:
        record = mon.spikes(name)
        # two chunks of 4 steps, time folded into the batch: [4*16, 8] each
        assert record.shape == (2 * 4 * 16, 8)
        theta = float(net.neurons()[name].threshold)
        assert torch.all((record == 0) | torch.isclose(record, torch.tensor(theta)))
    with Monitor(net, layers=["graph.1"]) as mon:
        net(x, steps=4)
    assert mon.spikes("graph.1").shape == (4 * 16, 8)


def test_monitor_still_rejects_unknown_and_ambiguous_names() -> None:
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Sequential(nn.ReLU())
            self.b = nn.Sequential(nn.ReLU())

    with pytest.raises(ValueError, match="no module named"):
        Monitor(Two(), layers=["7"])
    with pytest.raises(ValueError, match="ambiguous"):
        Monitor(Two(), layers=["0"])
