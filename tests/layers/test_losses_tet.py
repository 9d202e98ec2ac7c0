"""TET loss (Deng et al., ICLR 2022) and per-step cross-entropy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from snn.layers import per_step_cross_entropy, tet_loss


def test_per_step_cross_entropy_is_mean_of_step_losses() -> None:
    g = torch.Generator().manual_seed(0)
    out = torch.randn(5, 4, 3, generator=g)
    y = torch.tensor([0, 2, 1, 1])
    ref = sum(F.cross_entropy(out[t], y) for t in range(5)) / 5
    torch.testing.assert_close(per_step_cross_entropy(out, y), ref)
    assert per_step_cross_entropy(out, y, reduction="none").shape == (4,)


def test_tet_loss_matches_the_paper_by_hand() -> None:
    out = torch.zeros(2, 1, 2)  # uniform logits: CE = ln 2 at each step
    out[1, 0, 0] = 2.0
    y = torch.tensor([0])
    ce = (torch.log(torch.tensor(2.0)) + F.cross_entropy(out[1], y)) / 2
    mse = ((0 - 1) ** 2 * 3 + (2 - 1) ** 2) / 4  # phi = 1 over all 4 outputs
    torch.testing.assert_close(tet_loss(out, y, lamb=0.25), 0.75 * ce + 0.25 * mse)
    torch.testing.assert_close(tet_loss(out, y, lamb=0.0), ce)
    with pytest.raises(ValueError, match="lamb"):
        tet_loss(out, y, lamb=1.5)


def test_tet_differs_from_cross_entropy_of_the_mean() -> None:
    # TET optimises every step: an output right on average but wrong at one step still costs
    out = torch.tensor([[[4.0, 0.0]], [[-2.0, 0.0]]])
    y = torch.tensor([0])
    mean_ce = F.cross_entropy(out.mean(0), y)
    assert per_step_cross_entropy(out, y) > mean_ce + 0.5
