"""The Top-K cutoff (Wu et al. 2023): optimal cutoff steps, thresholds and exits by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from snn.converters import convert
from snn.converters.early_exit import TopKCutoff, optimal_cutoff_steps, top_gap

# [T=3, N=4, C=2]; every label is 0
OUT = torch.tensor([
    [[1.0, 0.0], [0.0, 0.5], [0.2, 0.0], [0.0, 1.0]],
    [[1.0, 0.0], [0.6, 0.0], [0.0, 0.3], [0.0, 1.0]],
    [[1.0, 0.0], [0.6, 0.0], [0.4, 0.0], [0.0, 1.0]],
])
LABELS = torch.zeros(4, dtype=torch.long)


def test_optimal_cutoff_steps_and_gap() -> None:
    g = optimal_cutoff_steps(OUT, LABELS)
    assert g[:3].tolist() == [1.0, 2.0, 3.0] and math.isinf(float(g[3]))
    assert torch.allclose(top_gap(OUT[0]), torch.tensor([1.0, 0.5, 0.2, 1.0]))
    with pytest.raises(ValueError, match="two classes"):
        top_gap(torch.zeros(3, 1))


def test_thresholds_exits_and_accuracy_by_hand() -> None:
    cut = TopKCutoff(epsilon=0.5).fit_outputs(OUT, LABELS)
    # t=1: the two samples with gap 1 are half settled (rate 0.5 >= 0.5): beta just below 1,
    # i.e. the next gap, 0.5; t=2 and t=3: every sample (rate 0.5, 0.75): beta 0
    assert cut.betas.tolist() == [0.5, 0.0, 0.0]
    assert cut.exits(OUT).tolist() == [1, 2, 2, 1]
    res = cut.evaluate_outputs(OUT, LABELS)
    assert res.accuracy == 0.5 and res.mean_steps == 1.5
    assert res.fixed_accuracy == {1: 0.5, 2: 0.5, 3: 0.75}
    assert res.exit_histogram == {1: 2, 2: 2}
    strict = TopKCutoff(epsilon=0.0).fit_outputs(OUT, LABELS)
    assert all(math.isinf(b) for b in strict.betas.tolist())  # sample 3 is never right
    assert strict.exits(OUT).tolist() == [3, 3, 3, 3]


@pytest.mark.slow
def test_cutoff_on_a_converted_network_saves_steps() -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 6)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net, _ = convert(model.eval(), x, time_chunk=32)
    cut = TopKCutoff(epsilon=0.02).fit(net, (x[:128], y[:128]), steps=32)
    res = cut.evaluate(net, (x[128:], y[128:]), steps=32)
    assert res.mean_steps < 16  # most samples settle long before 32 steps
    assert res.accuracy >= res.fixed_accuracy[32] - 0.03
    with pytest.raises(ValueError, match="epsilon"):
        TopKCutoff(epsilon=1.0)
    with pytest.raises(RuntimeError, match="fitted"):
        TopKCutoff().exits(OUT)
