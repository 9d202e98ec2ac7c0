"""Hybrid fine-tuning with iterative step reduction (Chowdhury et al. 2021)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snn.converters import convert
from snn.converters.finetune import finetune


def _task() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(384, 8, generator=g)
    y = (x[:, :4].sum(1) > x[:, 4:].sum(1)).long() + (x[:, 0] > 0.8).long()
    return x, y


@pytest.mark.slow
def test_step_reduction_raises_one_step_accuracy() -> None:
    torch.manual_seed(0)
    x, y = _task()
    ann = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.Adam(ann.parameters(), lr=0.01)
    for _ in range(200):
        loss = nn.functional.cross_entropy(ann(x[:256]), y[:256])
        opt.zero_grad()
        loss.backward()
        opt.step()
    ann.eval()
    net, _ = convert(ann, x[:256], time_chunk=4)
    stages = finetune(net, (x[:256], y[:256]), (2, 1), epochs=[1, 4], lr=3e-3,
                      eval_data=(x[256:], y[256:]))
    assert [s.steps for s in stages] == [2, 1] and net.steps == 1
    assert all(isinstance(m.threshold, nn.Parameter) for m in net.neurons().values())
    # converted and run for one step, the network loses much of its accuracy; training at one
    # step (after the stage at two) wins most of it back
    one = stages[-1]
    assert one.accuracy_after >= one.accuracy_before + 0.1, stages


def test_bad_arguments() -> None:
    x, y = _task()
    net, _ = convert(nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3)), x)
    for schedule in ([], [2, 2], [1, 2], [0]):
        with pytest.raises(ValueError, match="schedule"):
            finetune(net, (x, y), schedule)
    with pytest.raises(ValueError, match="epochs"):
        finetune(net, (x, y), (2, 1), epochs=[1])
    signed, _ = convert(nn.Sequential(nn.Linear(8, 4), nn.GELU(), nn.Linear(4, 3)), x)
    with pytest.raises(TypeError, match="signed"):
        finetune(signed, (x, y), (1,))
