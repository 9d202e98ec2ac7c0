r"""Hybrid conversion: fine-tune a converted network with surrogate gradients, reducing the
number of time steps stage by stage down to one.

Implements the iterative step reduction of Chowdhury, Rathi and Roy, "One Timestep is All You
Need: Training Spiking Neural Networks with Ultra Low Latency" (arXiv:2110.05929, 2021): start
from the converted SNN (their hybrid conversion), train it with back-propagation through time
and surrogate gradients at :math:`T_1` steps, then use the result to initialise training at
:math:`T_2 < T_1`, and so on down to :math:`T = 1`; weights and firing thresholds are trained
at every stage.

Readings taken: the loss is the cross-entropy of the network's readout (the mean output
current over the :math:`T` steps, :meth:`ConvertedSNN.forward`); thresholds are trained
directly (they divide the neuron input and scale its spikes, so their gradient flows through
both); the neurons keep their initial membrane (half the threshold, the converter's default) and
their reset by subtraction; the surrogate is the IF neuron's own (see :mod:`snn.surrogate`).
The paper's IF neurons also have a trainable leak; converted neurons here are non-leaky and stay
so. Only networks of IF neurons are fine-tuned (a signed multi-threshold neuron has no surrogate
gradient here).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snn.converters.data import labelled_batches
from snn.converters.expectation import SignedIFActivation
from snn.converters.modules import IFActivation
from snn.converters.network import ConvertedSNN

__all__ = ["StageResult", "finetune"]


@dataclass
class StageResult:
    """One stage of the step reduction.

    Attributes:
        steps: the number of time steps trained and evaluated at.
        epochs: epochs trained.
        accuracy_before: accuracy on the evaluation data at ``steps`` before the stage.
        accuracy_after: the same after it.
        final_loss: mean training loss of the last epoch.
    """

    steps: int
    epochs: int
    accuracy_before: float | None
    accuracy_after: float | None
    final_loss: float


def _trainable_thresholds(net: ConvertedSNN) -> list[nn.Parameter]:
    params = []
    for m in net.modules():
        if isinstance(m, SignedIFActivation):
            raise TypeError("fine-tuning needs IF neurons; this network has signed "
                            "multi-threshold neurons (converted transformers), which have no "
                            "surrogate gradient here")
        if isinstance(m, IFActivation):
            if not isinstance(m.threshold, nn.Parameter):
                value = m.threshold.detach().clone()
                del m._buffers["threshold"]
                m.threshold = nn.Parameter(value)
            params.append(m.threshold)
    if not params:
        raise ValueError("the network has no IF neurons to fine-tune")
    return params


def _accuracy(net: ConvertedSNN, data: Any, steps: int, batch_size: int) -> float:
    correct = total = 0
    device = next(net.parameters()).device
    with torch.no_grad():
        for x, y in labelled_batches(data, batch_size):
            pred = net(x.to(device), steps).argmax(-1)
            correct += int((pred == y.to(device)).sum())
            total += y.shape[0]
    return correct / total


def finetune(
    net: ConvertedSNN,
    data: tuple[Tensor, Tensor],
    schedule: Sequence[int] = (4, 2, 1),
    *,
    epochs: int | Sequence[int] = 5,
    lr: float = 1e-3,
    batch_size: int = 64,
    eval_data: Any = None,
    seed: int = 0,
) -> list[StageResult]:
    """Fine-tune ``net`` in place at each number of steps of ``schedule`` in turn.

    Args:
        net: a converted network of IF neurons (:func:`snn.converters.convert`).
        data: training ``(inputs [N, ...], labels [N])``.
        schedule: decreasing positive step counts, e.g. ``(4, 2, 1)``.
        epochs: epochs per stage (one number, or one per stage).
        lr: Adam learning rate (weights and thresholds).
        batch_size: training batch size.
        eval_data: labelled data to measure the accuracy at each stage's T on (optional).
        seed: seed of the batch order.

    Returns:
        one :class:`StageResult` per stage. ``net.steps`` is set to the last stage's T.

    Raises:
        ValueError: for a schedule that is empty, not decreasing or not positive, or bad
            epochs.
        TypeError: for a network with signed neurons.
    """
    steps_list = [int(s) for s in schedule]
    if not steps_list or any(s < 1 for s in steps_list) or any(
            b >= a for a, b in itertools.pairwise(steps_list)):
        raise ValueError(f"schedule must be strictly decreasing positive step counts, got "
                         f"{list(schedule)}")
    per_stage = [epochs] * len(steps_list) if isinstance(epochs, int) else list(epochs)
    if len(per_stage) != len(steps_list) or any(e < 0 for e in per_stage):
        raise ValueError(f"epochs must be a non-negative number or one per stage, got {epochs}")
    x, y = data
    if not isinstance(x, Tensor) or not isinstance(y, Tensor) or x.shape[0] != y.shape[0]:
        raise ValueError("data must be (inputs, labels) tensors of the same length")
    _trainable_thresholds(net)
    device = next(net.parameters()).device
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    results = []
    for steps, n_epochs in zip(steps_list, per_stage):
        before = _accuracy(net, eval_data, steps, 256) if eval_data is not None else None
        last = float("nan")
        for _ in range(n_epochs):
            net.train()
            total, batches = 0.0, 0
            perm = torch.randperm(x.shape[0], generator=g)
            for i in range(0, x.shape[0], batch_size):
                idx = perm[i:i + batch_size]
                out = net(x[idx].to(device), steps)
                loss = F.cross_entropy(out, y[idx].to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():  # thresholds stay positive
                    for m in net.modules():
                        if isinstance(m, IFActivation):
                            m.threshold.clamp_(min=1e-3)
                total += loss.item()
                batches += 1
            last = total / max(batches, 1)
        net.eval()
        after = _accuracy(net, eval_data, steps, 256) if eval_data is not None else None
        results.append(StageResult(steps, n_epochs, before, after, last))
    net.steps = steps_list[-1]
    return results
