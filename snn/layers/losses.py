"""Losses on time-first outputs ``[T, B, C]``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from snn.layers.readouts import readout

__all__ = [
    "membrane_cross_entropy",
    "per_step_cross_entropy",
    "rate_cross_entropy",
    "spike_count_mse",
    "tet_loss",
]


def _check_logits(x: Tensor, target: Tensor) -> None:
    if x.dim() != 3:
        raise ValueError(f"expected outputs [T, B, C], got shape {tuple(x.shape)}")
    if target.shape != x.shape[1:2]:
        raise ValueError(
            f"target must hold one class index per sample, shape ({x.shape[1]},), got "
            f"{tuple(target.shape)}"
        )


def rate_cross_entropy(spikes: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy on firing rates: the mean spike count per step is used as logits.

    Args:
        spikes: output spikes ``[T, B, C]``.
        target: class indices ``[B]``.
        reduction: as in :func:`torch.nn.functional.cross_entropy`.
    """
    _check_logits(spikes, target)
    return F.cross_entropy(spikes.mean(0), target, reduction=reduction)


def membrane_cross_entropy(
    v: Tensor, target: Tensor, mode: str = "mean", reduction: str = "mean"
) -> Tensor:
    """Cross-entropy on membrane potentials of a readout layer ``[T, B, C]``, reduced over time
    by ``mode`` (``"mean"``, ``"last"`` or ``"max"``) before the softmax."""
    _check_logits(v, target)
    if mode not in ("mean", "last", "max"):
        raise ValueError(f"mode must be 'mean', 'last' or 'max', got {mode!r}")
    return F.cross_entropy(readout(v, mode), target, reduction=reduction)


def spike_count_mse(
    spikes: Tensor,
    target: Tensor,
    correct_rate: float = 0.8,
    incorrect_rate: float = 0.2,
    reduction: str = "mean",
) -> Tensor:
    """Mean squared error between spike counts and target counts: the correct class should
    fire at ``correct_rate`` per step, the others at ``incorrect_rate``.

    Args:
        spikes: output spikes ``[T, B, C]``.
        target: class indices ``[B]``.
        correct_rate: target firing rate of the labelled output, in ``[0, 1]``.
        incorrect_rate: target firing rate of every other output, in ``[0, 1]``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    _check_logits(spikes, target)
    for name, rate in (("correct_rate", correct_rate), ("incorrect_rate", incorrect_rate)):
        if not 0 <= rate <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {rate}")
    steps, _, classes = spikes.shape
    one_hot = F.one_hot(target, classes).to(spikes.dtype)
    wanted = steps * (incorrect_rate + (correct_rate - incorrect_rate) * one_hot)
    return F.mse_loss(spikes.sum(0), wanted, reduction=reduction)


def per_step_cross_entropy(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    r"""Cross-entropy of every time step's output, averaged over the steps:
    :math:`\frac1T \sum_t \mathrm{CE}(o_t, y)` for outputs ``[T, B, C]`` (the first term of
    TET, Deng et al. 2022).

    Args:
        logits: outputs ``[T, B, C]``.
        target: class indices ``[B]``.
        reduction: ``"mean"`` (over steps and samples), ``"sum"`` (over samples, still averaged
            over steps) or ``"none"`` (``[B]``, averaged over steps).
    """
    _check_logits(logits, target)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    steps = logits.shape[0]
    per = F.cross_entropy(logits.flatten(0, 1), target.repeat(steps), reduction="none")
    per = per.view(steps, -1).mean(0)
    return per if reduction == "none" else (per.mean() if reduction == "mean" else per.sum())


def tet_loss(
    logits: Tensor, target: Tensor, lamb: float = 0.05, phi: float = 1.0
) -> Tensor:
    r"""Temporal efficient training (TET) loss, Deng et al., "Temporal Efficient Training of
    Spiking Neural Network via Gradient Re-weighting", ICLR 2022 (its Eq. 10-12):

    .. math::
        \mathcal L = (1 - \lambda) \frac1T \sum_{t=1}^T \mathrm{CE}(O(t), y)
        + \lambda \frac1T \sum_{t=1}^T \mathrm{MSE}(O(t), \phi)

    The regulariser pulls every step's output toward the constant :math:`\phi` (the paper
    uses :math:`\phi = V_{th} = 1`) to keep outputs from collapsing to extreme values; its
    mean runs over steps, samples and classes, as in the authors' code.

    Args:
        logits: outputs ``[T, B, C]`` (membrane or logits of each step; not averaged first).
        target: class indices ``[B]``.
        lamb: :math:`\lambda` in ``[0, 1]`` (the paper's experiments use 0.05 or 1e-3).
        phi: :math:`\phi`.
    """
    if not 0.0 <= lamb <= 1.0:
        raise ValueError(f"tet_loss: lamb must lie in [0, 1], got {lamb}")
    ce = per_step_cross_entropy(logits, target)
    if lamb == 0:
        return ce
    reg = F.mse_loss(logits, torch.full_like(logits, float(phi)))
    return (1.0 - lamb) * ce + lamb * reg
