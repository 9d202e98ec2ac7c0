r"""Hybrid conversion: fine-tune a converted network with surrogate gradients, reducing the
number of time steps stage by stage down to one.

Implements the iterative initialisation and retraining of Chowdhury, Rathi and Roy, "One
Timestep is All You Need: Training Spiking Neural Networks with Ultra Low Latency"
(arXiv:2110.05929, 2021): start from the converted SNN (their hybrid conversion), train it with
back-propagation through time and surrogate gradients at :math:`T_1` steps, then use the
trained network to initialise training at :math:`T_2 < T_1`, and so on down to :math:`T = 1`;
weights and firing thresholds are trained at every stage. The paper stresses that the
reduction must be gradual (it steps :math:`T` down one at a time, e.g. 5, 4, 3, 2, 1): a
network trained at :math:`T` is a good initialisation for :math:`T - 1` but not for much
fewer steps.

Readings taken where the paper leaves a choice or where this converter differs:

- the loss is the cross-entropy of the network's readout (the mean output current over the
  :math:`T` steps, :meth:`ConvertedSNN.forward`), as the paper's output layer accumulates its
  membrane without firing;
- each stage is a fresh training run (a new Adam optimiser) initialised from the previous
  stage's network, as the paper's stages are separate trainings; its learning rate is either
  constant or annealed along a cosine over the stage (``lr_schedule="cosine"``; the paper
  decays it in steps, any decaying schedule serves the same purpose);
- thresholds are trained directly (they divide the neuron input and scale its spikes, so their
  gradient flows through both) and are kept positive;
- the neurons keep the converter's initial membrane (half the threshold) and reset by
  subtraction. The paper's neurons also have a trainable leak, one per layer, trained with the
  weights and thresholds at every stage; ``train_leak=True`` does the same (the IF neurons
  become LIF neurons whose leak starts at 1, the IF neuron the conversion made). It is off by
  default: at :math:`T = 1`, the target, a leak only scales the initial membrane, a constant
  shift of the input that the trained bias of the layer before already provides;
- each stage starts from the previous stage's weights, thresholds and leaks as they are (the
  paper's iterative initialisation), with nothing rescaled for the new number of steps;
- the surrogate is the IF neuron's own unless ``surrogate`` names another (the paper's
  DIET-SNN surrogate is linear, ``"triangle"``);
- when ``val_data`` is given, each stage ends with the weights of its epoch of best
  validation accuracy (early stopping on data held out from training), unless
  ``keep="last"``: then it ends with its last epoch and the validation accuracy after each
  epoch is only recorded. Choosing the best of many epochs on a small validation set is
  optimistic (the chosen epoch's validation accuracy overstates its accuracy on new data);
  keeping the last epoch of a fixed budget whose length was chosen on validation is not
  (the budget is then a hyperparameter like the learning rate).

Optional weight averaging (not part of the paper): with ``ema_decay`` each stage keeps an
exponential moving average of the weights, thresholds and leaks, :math:`\bar w \leftarrow d\,
\bar w + (1 - d)\,w` after every update (an exponential form of the weight averaging of
Izmailov et al., "Averaging Weights Leads to Wider Optima and Better Generalization", UAI 2018,
who take the equal average of the weights at the end of each epoch); it starts at the stage's
initial weights, validation is measured on the average, and the stage ends with the average
(of the best epoch with ``val_data``).

Optional, not part of the paper: batch normalisation during each stage (``batch_norm``, see
:mod:`snn.converters.stage_norm`), dropout on the inputs of the Linear layers while training
(``dropout``; Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
Overfitting", JMLR 2014), and knowledge distillation from the source ANN (Hinton,
Vinyals and Dean, "Distilling the Knowledge in a Neural Network", arXiv:1503.02531, 2015;
applied to SNNs trained from ANNs by Kushawaha et al., "Distilling Spikes", ICPR 2020): with
``teacher``, the loss is :math:`(1-\lambda)\,\mathrm{CE}(z, y) + \lambda\,\tau^2\,
\mathrm{KL}(\sigma(z_a/\tau)\,\|\,\sigma(z/\tau))` for SNN readout :math:`z`, teacher
logits :math:`z_a`, weight :math:`\lambda` (``distill_weight``) and temperature :math:`\tau`.

Only networks of IF neurons are fine-tuned (a signed multi-threshold neuron has no surrogate
gradient here).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snn.converters.data import labelled_batches
from snn.converters.expectation import SignedIFActivation
from snn.converters.modules import IFActivation
from snn.converters.network import ConvertedSNN
from snn.converters.stage_norm import fold_norms, insert_norms
from snn.neurons.lif import LIF
from snn.surrogate import Surrogate, get_surrogate

__all__ = ["KEEP", "LR_SCHEDULES", "StageResult", "distillation_loss", "finetune"]

LR_SCHEDULES = ("constant", "cosine")
"""``constant``: the learning rate ``lr`` throughout; ``cosine``: annealed from ``lr`` to 0 along
a half cosine over each stage's updates."""

KEEP = ("best", "last")
"""The weights a stage ends with when it has validation data (``finetune``'s ``keep``)."""

Augment = Callable[[Tensor, torch.Generator], Tensor]


@dataclass
class StageResult:
    """One stage of the step reduction.

    Attributes:
        steps: the number of time steps trained and evaluated at.
        epochs: epochs trained.
        accuracy_before: accuracy on ``eval_data`` at ``steps`` before the stage.
        accuracy_after: the same after it.
        final_loss: mean training loss of the last epoch.
        val_accuracy: the validation accuracy of the weights the stage ends with (``None``
            without ``val_data``): its best with ``keep="best"``, the last epoch's with
            ``keep="last"``.
        best_epoch: the epoch (1-based; 0: the stage's initial weights) whose weights the stage
            kept (the last one without ``val_data`` or with ``keep="last"``).
        val_history: the validation accuracy after each epoch, the initial weights' first
            (``None`` without ``val_data``).
    """

    steps: int
    epochs: int
    accuracy_before: float | None
    accuracy_after: float | None
    final_loss: float
    val_accuracy: float | None = None
    best_epoch: int | None = None
    val_history: list[float] | None = None


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


def _trainable_leaks(net: ConvertedSNN) -> list[nn.Parameter]:
    """Give every IF neuron a trainable layer-wise leak :math:`\\lambda`, starting at 1.

    Each :class:`IFActivation`'s integrate-and-fire neuron becomes a LIF neuron
    :math:`v_t = \\lambda v_{t-1} + x_t/\\vartheta` (same threshold, reset by subtraction and
    surrogate) whose decay :math:`\\lambda` is an :class:`~torch.nn.Parameter`; with
    :math:`\\lambda = 1` it is the IF neuron, so the network is unchanged until trained. A neuron
    that already has a trainable leak keeps it (a later call of :func:`finetune`).
    """
    leaks = []
    for m in net.modules():
        if not isinstance(m, IFActivation):
            continue
        if isinstance(m.neuron, LIF) and isinstance(m.neuron.beta, nn.Parameter):
            leaks.append(m.neuron.beta)
            continue
        old = m.neuron
        lif = LIF(beta=1.0, threshold=1.0, reset="subtract", surrogate=old.surrogate,
                  backend=old.backend)
        lif.beta = nn.Parameter(torch.tensor(1.0, device=m.threshold.device))
        m.neuron = lif
        leaks.append(lif.beta)
    return leaks


def _clamp(net: ConvertedSNN) -> None:
    """Keep thresholds positive and leaks in [0, 1] after an update."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, IFActivation):
                m.threshold.clamp_(min=1e-3)
                beta = getattr(m.neuron, "beta", None)
                if isinstance(beta, nn.Parameter):
                    beta.clamp_(0.0, 1.0)


def _accuracy(net: ConvertedSNN, data: Any, steps: int, batch_size: int) -> float:
    correct = total = 0
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    with torch.no_grad():
        for x, y in labelled_batches(data, batch_size):
            pred = net(x.to(device), steps).argmax(-1)
            correct += int((pred == y.to(device)).sum())
            total += y.shape[0]
    net.train(was_training)
    if total == 0:
        raise ValueError("evaluation data holds no samples")
    return correct / total


def distillation_loss(logits: Tensor, target: Tensor, teacher_logits: Tensor, weight: float,
                      temperature: float) -> Tensor:
    r"""Knowledge-distillation loss of Hinton et al. (arXiv:1503.02531):
    :math:`(1-\lambda)\,\mathrm{CE}(z, y) + \lambda\tau^2\,\mathrm{KL}(\sigma(z_a/\tau)\,\|\,
    \sigma(z/\tau))`, averaged over the batch.

    Args:
        logits: the student's outputs :math:`z`, ``[B, classes]``.
        target: labels ``[B]``.
        teacher_logits: the teacher's outputs :math:`z_a`, ``[B, classes]``.
        weight: :math:`\lambda` in ``[0, 1]``.
        temperature: :math:`\tau > 0`.
    """
    ce = F.cross_entropy(logits, target)
    if weight == 0:
        return ce
    kl = F.kl_div(F.log_softmax(logits / temperature, -1),
                  F.log_softmax(teacher_logits / temperature, -1),
                  reduction="batchmean", log_target=True)
    return (1 - weight) * ce + weight * temperature ** 2 * kl


def _check_options(lr_schedule: str, teacher: nn.Module | None, distill_weight: float,
                   temperature: float) -> None:
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    if not 0 <= distill_weight <= 1:
        raise ValueError(f"distill_weight must lie in [0, 1], got {distill_weight}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if teacher is not None and not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be an nn.Module (the source ANN), got "
                        f"{type(teacher).__name__}")


def _set_surrogate(net: ConvertedSNN, surrogate: str | Surrogate | None) -> None:
    if surrogate is None:
        return
    sg = get_surrogate(surrogate)
    for m in net.modules():
        if isinstance(m, IFActivation):
            m.neuron.surrogate = sg


def _averaged(net: ConvertedSNN) -> dict[str, Tensor]:
    """A copy of the floating-point entries of ``net``'s state (the running average's start)."""
    return {k: v.detach().clone() for k, v in net.state_dict().items()
            if v.is_floating_point()}


def _swap(net: ConvertedSNN, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Load ``state`` into ``net`` and return the entries it replaced."""
    old = _averaged(net)
    net.load_state_dict(state, strict=False)
    return {k: old[k] for k in state}


def _train_stage(net: ConvertedSNN, x: Tensor, y: Tensor, steps: int, n_epochs: int,
                 g: torch.Generator, *, lr: float, lr_schedule: str, batch_size: int,
                 val_data: Any, augment: Augment | None, teacher: nn.Module | None,
                 distill_weight: float, temperature: float, ema_decay: float | None = None,
                 keep: str = "best") -> tuple[float, float | None, int, list[float] | None]:
    """One stage: a fresh Adam run of ``n_epochs`` at ``steps``. Returns the last epoch's mean
    loss, the kept weights' validation accuracy, the epoch kept and the validation accuracy
    after every epoch (see :class:`StageResult`)."""
    device = next(net.parameters()).device
    ema = _averaged(net) if ema_decay is not None else None
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    updates = n_epochs * math.ceil(x.shape[0] / batch_size)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(updates, 1))
             if lr_schedule == "cosine" else None)
    best_val, best_state, best_epoch = None, None, n_epochs
    history: list[float] | None = None
    if val_data is not None:
        best_val, best_epoch = _accuracy(net, val_data, steps, 256), 0
        history = [best_val]
        if keep == "best":
            best_state = copy.deepcopy(net.state_dict())
    last = float("nan")
    for epoch in range(1, n_epochs + 1):
        net.train()
        total, batches = 0.0, 0
        perm = torch.randperm(x.shape[0], generator=g)
        for i in range(0, x.shape[0], batch_size):
            idx = perm[i:i + batch_size]
            xb = x[idx] if augment is None else augment(x[idx], g)
            xb, yb = xb.to(device), y[idx].to(device)
            out = net(xb, steps)
            if teacher is None:
                loss = F.cross_entropy(out, yb)
            else:
                with torch.no_grad():
                    t_out = teacher(xb)
                loss = distillation_loss(out, yb, t_out, distill_weight, temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            _clamp(net)
            if ema is not None:
                with torch.no_grad():
                    for k, v in net.state_dict().items():
                        if k in ema:
                            ema[k].lerp_(v, 1 - ema_decay)
            total += loss.item()
            batches += 1
        last = total / max(batches, 1)
        if history is not None:
            current = _swap(net, ema) if ema is not None else None
            acc = _accuracy(net, val_data, steps, 256)
            history.append(acc)
            if keep == "best" and acc >= best_val:  # ties: the later epoch, trained longer
                best_val, best_epoch = acc, epoch
                best_state = copy.deepcopy(net.state_dict())
            if current is not None:
                _swap(net, current)
    if keep == "last":
        best_epoch = n_epochs
        best_val = history[-1] if history is not None else None
    if best_state is not None and (best_epoch != n_epochs or ema is not None):
        net.load_state_dict(best_state)
    elif ema is not None:
        net.load_state_dict(ema, strict=False)
    net.eval()
    return last, best_val, best_epoch, history


def finetune(
    net: ConvertedSNN,
    data: tuple[Tensor, Tensor],
    schedule: Sequence[int] = (4, 2, 1),
    *,
    epochs: int | Sequence[int] = 5,
    lr: float | Sequence[float] = 1e-3,
    batch_size: int = 64,
    eval_data: Any = None,
    seed: int = 0,
    lr_schedule: str = "constant",
    val_data: Any = None,
    augment: Augment | None = None,
    teacher: nn.Module | None = None,
    distill_weight: float = 0.5,
    temperature: float = 4.0,
    surrogate: str | Surrogate | None = None,
    train_leak: bool = False,
    batch_norm: bool = False,
    dropout: float = 0.0,
    ema_decay: float | Sequence[float | None] | None = None,
    keep: str = "best",
) -> list[StageResult]:
    """Fine-tune ``net`` in place at each number of steps of ``schedule`` in turn.

    Args:
        net: a converted network of IF neurons (:func:`snn.converters.convert`).
        data: training ``(inputs [N, ...], labels [N])``.
        schedule: decreasing positive step counts, e.g. ``(4, 3, 2, 1)``.
        epochs: epochs per stage (one number, or one per stage).
        lr: Adam learning rate (weights and thresholds), the peak with ``lr_schedule="cosine"``;
            one number, or one per stage.
        batch_size: training batch size.
        eval_data: labelled data to report the accuracy on before and after each stage
            (optional; it selects nothing).
        seed: seed of the batch order and of ``augment``.
        lr_schedule: one of :data:`LR_SCHEDULES`, applied within each stage.
        val_data: labelled data held out from training (optional): each stage keeps the
            weights of its epoch of best accuracy on it at the stage's T.
        augment: ``augment(inputs, generator)`` returns a randomly transformed training batch
            (optional).
        teacher: the source ANN for knowledge distillation (optional, see the module notes);
            it is run in eval mode and not trained.
        distill_weight: :math:`\\lambda`, the weight of the distillation term.
        temperature: :math:`\\tau`, the distillation temperature.
        surrogate: surrogate gradient of the neurons during fine-tuning (a name or instance
            from :mod:`snn.surrogate`; default: the neurons' own). It stays set afterwards.
        train_leak: train a layer-wise leak with the weights and thresholds, as the paper
            does: each IF neuron becomes a LIF neuron whose decay :math:`\\lambda` starts at 1
            (the IF neuron) and is kept in ``[0, 1]``. It stays a LIF neuron afterwards.
        batch_norm: during each stage, normalise the input of every IF neuron fed by a
            Conv/Linear layer with batch statistics (:mod:`snn.converters.stage_norm`: inserted
            as the identity with statistics measured on ``data`` at the stage's T, folded back
            into the layer after the stage, so the result has the structure of the input).
        dropout: the probability :math:`p` of dropout (Srivastava et al., JMLR 2014) on the
            input of every ``nn.Linear`` layer during training (the spikes of the layer
            before, scaled by :math:`1/(1-p)` where kept), as the ANN classifiers that the
            converter removes dropout from are trained; 0: none. Validation and evaluation
            run without it, and it is gone after fine-tuning.
        ema_decay: the decay :math:`d \\in [0, 1)` of a running average of the weights kept
            during each stage (optional, see the module notes): validation is measured on the
            average and the stage ends with it. ``None``: no averaging. One value for every
            stage, or one per stage (``None`` entries: no averaging in that stage; a short
            stage's average barely leaves its initial weights).
        keep: which weights each stage ends with when ``val_data`` is given: ``"best"``,
            those of its epoch of best validation accuracy, or ``"last"``, those of its last
            epoch (the running average with ``ema_decay``), the validation accuracy being only
            recorded (``val_history``). Without ``val_data`` every stage ends with its last
            epoch.

    Returns:
        one :class:`StageResult` per stage. ``net.steps`` is set to the last stage's T.

    Raises:
        ValueError: for a schedule that is empty, not decreasing or not positive, bad
            epochs, or a bad option.
        TypeError: for a network with signed neurons, or a teacher that is not a module.
    """
    steps_list = [int(s) for s in schedule]
    if not steps_list or any(s < 1 for s in steps_list) or any(
            b >= a for a, b in itertools.pairwise(steps_list)):
        raise ValueError(f"schedule must be strictly decreasing positive step counts, got "
                         f"{list(schedule)}")
    per_stage = [epochs] * len(steps_list) if isinstance(epochs, int) else list(epochs)
    if len(per_stage) != len(steps_list) or any(e < 0 for e in per_stage):
        raise ValueError(f"epochs must be a non-negative number or one per stage, got {epochs}")
    _check_options(lr_schedule, teacher, distill_weight, temperature)
    lrs = [lr] * len(steps_list) if isinstance(lr, (int, float)) else [float(v) for v in lr]
    if len(lrs) != len(steps_list) or any(not v > 0 for v in lrs):
        raise ValueError(f"lr must be a positive number or one per stage, got {lr}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {KEEP}, got {keep!r}")
    emas = (list(ema_decay) if isinstance(ema_decay, Sequence)
            else [ema_decay] * len(steps_list))
    if len(emas) != len(steps_list) or any(d is not None and not 0 <= d < 1 for d in emas):
        raise ValueError(f"ema_decay must lie in [0, 1) or be None, one value or one per "
                         f"stage, got {ema_decay}")
    x, y = data
    if not isinstance(x, Tensor) or not isinstance(y, Tensor) or x.shape[0] != y.shape[0]:
        raise ValueError("data must be (inputs, labels) tensors of the same length")
    _trainable_thresholds(net)
    if train_leak:
        _trainable_leaks(net)
    _set_surrogate(net, surrogate)
    if teacher is not None:
        teacher.eval()
    g = torch.Generator().manual_seed(seed)
    hooks = _input_dropout(net, dropout) if dropout > 0 else []
    try:
        results = _stages(net, x, y, steps_list, per_stage, lrs, emas, g, batch_norm=batch_norm,
                          eval_data=eval_data, lr_schedule=lr_schedule, batch_size=batch_size,
                          val_data=val_data, augment=augment, teacher=teacher,
                          distill_weight=distill_weight, temperature=temperature, keep=keep)
    finally:
        for h in hooks:
            h.remove()
    net.steps = steps_list[-1]
    return results


def _input_dropout(net: ConvertedSNN, p: float) -> list[Any]:
    """Dropout on the input of every ``nn.Linear`` of ``net`` in training mode (hooks)."""
    def hook(module: nn.Module, args: tuple) -> tuple | None:
        if not module.training:
            return None
        return (F.dropout(args[0], p, True), *args[1:])

    return [m.register_forward_pre_hook(hook) for m in net.modules() if isinstance(m, nn.Linear)]


def _stages(net: ConvertedSNN, x: Tensor, y: Tensor, steps_list: list[int],
            per_stage: list[int], lrs: list[float], emas: list[float | None],
            g: torch.Generator, *, batch_norm: bool, eval_data: Any, **stage: Any
            ) -> list[StageResult]:
    """Run the stages of :func:`finetune` in turn."""
    results = []
    for steps, n_epochs, stage_lr, stage_ema in zip(steps_list, per_stage, lrs, emas):
        before = _accuracy(net, eval_data, steps, 256) if eval_data is not None else None
        if batch_norm:
            insert_norms(net, x, steps)
        last, best_val, best_epoch, history = _train_stage(
            net, x, y, steps, n_epochs, g, lr=stage_lr, ema_decay=stage_ema, **stage)
        if batch_norm:
            fold_norms(net)
        after = _accuracy(net, eval_data, steps, 256) if eval_data is not None else None
        results.append(StageResult(steps, n_epochs, before, after, last, best_val, best_epoch,
                                   history))
    return results
