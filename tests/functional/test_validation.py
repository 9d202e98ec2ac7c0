"""Bad input to the functional core raises errors that name what was wrong."""

from __future__ import annotations

import math

import pytest
import torch

import snn.functional as F


@pytest.mark.parametrize("beta", [-0.1, 1.5, math.nan])
def test_decay_out_of_range(beta: float) -> None:
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\]"):
        F.lif_step(torch.zeros(2, 3), beta=beta)


def test_tensor_decay_out_of_range() -> None:
    with pytest.raises(ValueError, match="beta must lie in"):
        F.lif_step(torch.zeros(2, 3), beta=torch.tensor([0.5, 1.2, 0.1]))
    with pytest.raises(ValueError, match="alpha must lie in"):
        F.cuba_lif_step(torch.zeros(2, 3), alpha=2.0, beta=0.5)
    with pytest.raises(ValueError, match="beta_adapt must lie in"):
        F.alif_step(torch.zeros(2, 3), beta=0.5, beta_adapt=-1.0)


def test_bad_reset_threshold_and_dtype() -> None:
    with pytest.raises(ValueError, match="reset must be one of"):
        F.lif_step(torch.zeros(2), beta=0.5, reset="zero")
    with pytest.raises(ValueError, match="threshold must be positive"):
        F.if_step(torch.zeros(2), threshold=0.0)
    with pytest.raises(TypeError, match="floating-point"):
        F.if_step(torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match="beta must be a float or a tensor"):
        F.lif_step(torch.zeros(2), beta="0.5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="adapt_scale must be >= 0"):
        F.alif_step(torch.zeros(2), beta=0.5, beta_adapt=0.5, adapt_scale=-1.0)


def test_wrong_rank_and_empty_sequences() -> None:
    with pytest.raises(ValueError, match=r"time-first \[T, B, \.\.\.\]"):
        F.lif_sequence(torch.zeros(5), beta=0.5)
    with pytest.raises(ValueError, match="T = 0"):
        F.lif_sequence(torch.zeros(0, 2, 3), beta=0.5)
    with pytest.raises(ValueError, match="scalar"):
        F.if_step(torch.tensor(1.0))


def test_mismatched_state_shape() -> None:
    with pytest.raises(ValueError, match=r"state\.v has shape \(2, 4\).*\(2, 3\)"):
        F.lif_step(torch.zeros(2, 3), F.LIFState(torch.zeros(2, 4)), beta=0.5)
    with pytest.raises(ValueError, match=r"state\.i has shape"):
        F.cuba_lif_step(
            torch.zeros(2, 3),
            F.CubaLIFState(torch.zeros(3), torch.zeros(2, 3)),
            alpha=0.5,
            beta=0.5,
        )
    with pytest.raises(TypeError, match=r"state\.v must be a tensor"):
        F.lif_step(torch.zeros(2, 3), F.LIFState(0.0), beta=0.5)  # type: ignore[arg-type]


def test_unknown_surrogate_name() -> None:
    with pytest.raises(ValueError, match="unknown surrogate 'nope'"):
        F.lif_step(torch.zeros(2), beta=0.5, surrogate="nope")


def test_time_constant_mapping_round_trips() -> None:
    beta = F.tau_to_decay(20.0, dt=1.0)
    assert beta == pytest.approx(math.exp(-1 / 20))
    assert F.decay_to_tau(beta, dt=1.0) == pytest.approx(20.0)
    assert F.decay_to_tau(1.0) == math.inf
    with pytest.raises(ValueError, match="tau must be positive"):
        F.tau_to_decay(0.0)
    with pytest.raises(ValueError, match="dt must be positive"):
        F.tau_to_decay(1.0, dt=-1.0)
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\]"):
        F.decay_to_tau(0.0)
