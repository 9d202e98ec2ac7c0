"""Hybrid fine-tuning with iterative step reduction (Chowdhury et al. 2021)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from snn.converters import convert
from snn.converters.finetune import distillation_loss, finetune


def _task() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(384, 8, generator=g)
    y = (x[:, :4].sum(1) > x[:, 4:].sum(1)).long() + (x[:, 0] > 0.8).long()
    return x, y


def _converted(width: int = 16, iterations: int = 100,
               time_chunk: int = 2) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small ReLU network trained on :func:`_task`, converted; with the task's data."""
    torch.manual_seed(0)
    x, y = _task()
    ann = nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 3))
    opt = torch.optim.Adam(ann.parameters(), lr=0.01)
    for _ in range(iterations):
        loss = nn.functional.cross_entropy(ann(x[:256]), y[:256])
        opt.zero_grad()
        loss.backward()
        opt.step()
    ann.eval()
    net, _ = convert(ann, x[:256], time_chunk=time_chunk)
    return net, x, y


@pytest.mark.slow
def test_step_reduction_raises_one_step_accuracy() -> None:
    net, x, y = _converted(width=32, iterations=200, time_chunk=4)
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




def test_validation_keeps_the_best_epoch() -> None:
    # a learning rate far too large wrecks the network at every epoch, so the stage's best
    # validation accuracy is that of its initial weights, and the stage ends with them
    net, x, y = _converted()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    stages = finetune(net, (x[:256], y[:256]), (2,), epochs=2, lr=50.0,
                      val_data=(x[256:], y[256:]), eval_data=(x[256:], y[256:]))
    s = stages[0]
    assert s.best_epoch == 0 and s.val_accuracy == s.accuracy_before == s.accuracy_after
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # without validation data the stage ends with its last epoch
    net2, _, _ = _converted()
    stages = finetune(net2, (x[:256], y[:256]), (2,), epochs=2, lr=50.0)
    assert stages[0].best_epoch == 2 and stages[0].val_accuracy is None
    assert stages[0].val_history is None
    assert not all(torch.equal(before[k], v) for k, v in net2.state_dict().items())


def test_keep_last_records_validation_and_ends_with_the_last_epoch() -> None:
    # the same wrecking learning rate: with keep="last" the stage ends with its last epoch,
    # identical to a run without validation data, and validation is only recorded
    net, x, y = _converted()
    held_out = (x[256:], y[256:])
    s = finetune(net, (x[:256], y[:256]), (2,), epochs=2, lr=50.0, keep="last",
                 val_data=held_out, eval_data=held_out)[0]
    plain, _, _ = _converted()
    finetune(plain, (x[:256], y[:256]), (2,), epochs=2, lr=50.0)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in plain.state_dict().items())
    assert s.best_epoch == 2 and len(s.val_history) == 3
    assert s.val_history[0] == s.accuracy_before and s.val_history[-1] == s.accuracy_after
    assert s.val_accuracy == s.accuracy_after < max(s.val_history)
    # keep="best" records the same history and keeps its best entry
    best, _, _ = _converted()
    b = finetune(best, (x[:256], y[:256]), (2,), epochs=2, lr=50.0, val_data=held_out)[0]
    assert b.val_history == s.val_history and b.val_accuracy == max(b.val_history)
    with pytest.raises(ValueError, match="keep"):
        finetune(net, (x, y), (1,), keep="first")


def _record_learning_rates(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The learning rate of every Adam update from now on, in order."""
    original = torch.optim.Adam.step
    lrs: list[float] = []

    def step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    return lrs

def test_cosine_schedule_anneals_to_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    net, x, y = _converted()
    seen = []

    def spy(batch: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        seen.append(batch.shape[0])
        return batch

    lrs = _record_learning_rates(monkeypatch)
    finetune(net, (x[:256], y[:256]), (2, 1), epochs=[1, 2], lr=0.01, batch_size=64,
             lr_schedule="cosine", augment=spy)
    # 4 updates at T=2, then a fresh optimiser and 8 updates at T=1, each a half cosine
    assert seen == [64] * 12 and len(lrs) == 12
    assert lrs[0] == pytest.approx(0.01) and lrs[4] == pytest.approx(0.01)
    assert lrs[1] == pytest.approx(0.005 * (1 + math.cos(math.pi / 4)))
    assert lrs[7] == pytest.approx(0.005 * (1 + math.cos(math.pi * 3 / 8)))
    assert all(a > b for a, b in itertools.pairwise(lrs[4:]))


def test_distillation_loss_matches_hinton() -> None:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(5, 4, generator=g, requires_grad=True)
    za = torch.randn(5, 4, generator=g)
    y = torch.tensor([0, 1, 2, 3, 0])
    tau = 3.0
    assert torch.allclose(distillation_loss(z, y, za, 0.0, tau),
                          nn.functional.cross_entropy(z, y))
    soft = distillation_loss(z, y, za, 1.0, tau)
    p, q = torch.softmax(z / tau, -1), torch.softmax(za / tau, -1)
    by_hand = tau ** 2 * (q * (q.log() - p.log())).sum(-1).mean()
    assert torch.allclose(soft, by_hand)
    # Hinton et al.: the soft term's gradient with respect to the logits is (p - q) / tau per
    # sample, so the tau^2 factor keeps it on the scale of the hard term: tau (p - q) / B
    (grad,) = torch.autograd.grad(soft, z)
    assert torch.allclose(grad, tau * (p - q).detach() / 5, atol=1e-6)
    assert distillation_loss(za, y, za, 1.0, tau).abs() < 1e-6


def test_distillation_and_surrogate_options() -> None:
    net, x, y = _converted()
    teacher = nn.Sequential(nn.Linear(8, 3))
    stages = finetune(net, (x[:64], y[:64]), (1,), epochs=1, teacher=teacher,
                      distill_weight=0.7, temperature=2.0, surrogate="triangle")
    assert teacher.training is False and stages[0].final_loss > 0
    assert all(type(m.neuron.surrogate).__name__ == "Triangle" for m in net.neurons().values())
    for kwargs, match in (({"lr_schedule": "step"}, "lr_schedule"),
                          ({"distill_weight": 1.5}, "distill_weight"),
                          ({"temperature": 0.0}, "temperature")):
        with pytest.raises(ValueError, match=match):
            finetune(net, (x, y), (1,), **kwargs)
    with pytest.raises(TypeError, match="teacher"):
        finetune(net, (x, y), (1,), teacher=lambda t: t)


def test_trainable_leak_starts_as_the_if_neuron_and_is_trained() -> None:
    # Chowdhury et al. train a layer-wise leak with the weights and thresholds: the IF neurons
    # become LIF neurons whose leak starts at 1, so the network is unchanged before training
    net, x, y = _converted()
    with torch.no_grad():
        before = net(x[256:], 3).clone()
    stages = finetune(net, (x[:256], y[:256]), (3,), epochs=0, train_leak=True)
    leaks = [m.neuron.beta for m in net.neurons().values()]
    assert leaks and all(isinstance(b, nn.Parameter) and float(b.detach()) == 1.0 for b in leaks)
    assert stages[0].epochs == 0
    with torch.no_grad():
        assert torch.equal(net(x[256:], 3), before)
    # at three steps the leak gets a gradient and moves, and stays in [0, 1]
    finetune(net, (x[:256], y[:256]), (3,), epochs=2, lr=0.05, train_leak=True)
    after = [m.neuron.beta for m in net.neurons().values()]
    assert after[0] is leaks[0]  # a second call keeps the trained leak
    assert all(0.0 <= float(b.detach()) <= 1.0 for b in after)
    assert any(float(b.detach()) != 1.0 for b in after)


def test_weight_average_options() -> None:
    x, y = _converted()[1:]
    # decay 0: the average is the last weights, so the result is that of plain training
    plain, _, _ = _converted()
    finetune(plain, (x[:256], y[:256]), (2, 1), epochs=2, lr=0.01, seed=3)
    zero, _, _ = _converted()
    finetune(zero, (x[:256], y[:256]), (2, 1), epochs=2, lr=0.01, seed=3, ema_decay=0.0)
    assert all(torch.allclose(v, zero.state_dict()[k]) for k, v in plain.state_dict().items())
    # a decay near 1 keeps the average at the initial weights while training moves them
    start, _, _ = _converted()
    slow, _, _ = _converted()
    finetune(slow, (x[:256], y[:256]), (1,), epochs=2, lr=0.05, ema_decay=1 - 1e-9)
    init, moved = start.state_dict(), plain.state_dict()
    for k, v in slow.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, init[k], atol=1e-6), k
    assert not all(torch.allclose(v, init[k]) for k, v in moved.items())
    # with validation data the stage's validation accuracy is that of the average it ends with
    net, _, _ = _converted()
    s = finetune(net, (x[:256], y[:256]), (1,), epochs=3, lr=0.01, ema_decay=0.8,
                 val_data=(x[256:], y[256:]), eval_data=(x[256:], y[256:]))[0]
    assert s.val_accuracy == s.accuracy_after
    for bad in (1.0, -0.1, [0.9], [None, 1.0]):
        with pytest.raises(ValueError, match="ema_decay"):
            finetune(net, (x, y), (2, 1), ema_decay=bad)


def test_weight_average_per_stage() -> None:
    # no average in the first stage, an average that cannot move in the second: the result is
    # the network after the first stage alone, trained as without any average
    x, y = _converted()[1:]
    first, _, _ = _converted()
    finetune(first, (x[:256], y[:256]), (2,), epochs=2, lr=0.01, seed=3)
    net, _, _ = _converted()
    finetune(net, (x[:256], y[:256]), (2, 1), epochs=2, lr=0.01, seed=3,
             ema_decay=[None, 1 - 1e-9])
    ref = first.state_dict()
    assert all(torch.allclose(v, ref[k], atol=1e-6) for k, v in net.state_dict().items()
               if v.is_floating_point())
    # while plain training of the second stage moves the weights
    both, _, _ = _converted()
    finetune(both, (x[:256], y[:256]), (2, 1), epochs=2, lr=0.01, seed=3)
    assert not all(torch.allclose(v, ref[k], atol=1e-6) for k, v in both.state_dict().items()
                   if v.is_floating_point())


def test_learning_rate_per_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    net, x, y = _converted()
    lrs = _record_learning_rates(monkeypatch)
    finetune(net, (x[:128], y[:128]), (2, 1), epochs=1, lr=[0.01, 0.03], batch_size=64)
    assert lrs == [0.01, 0.01, 0.03, 0.03]
    for bad in ([0.01], [0.01, 0.0]):
        with pytest.raises(ValueError, match="lr"):
            finetune(net, (x, y), (2, 1), lr=bad)


def test_dropout_on_linear_inputs_while_training_only() -> None:
    net, x, y = _converted()
    first = next(m for m in net.modules() if isinstance(m, nn.Linear))
    hidden = [m for m in net.modules() if isinstance(m, nn.Linear)][1]
    seen: list[tuple[bool, torch.Tensor]] = []
    hidden.register_forward_hook(lambda m, args, out: seen.append((m.training, args[0].detach())))
    torch.manual_seed(0)
    finetune(net, (x[:256], y[:256]), (2,), epochs=1, lr=1e-3, dropout=0.5,
             val_data=(x[256:], y[256:]))
    train = torch.cat([a.flatten() for t, a in seen if t])
    evals = torch.cat([a.flatten() for t, a in seen if not t])
    # the hidden layer's input is spikes of amplitude theta: while training, about half are
    # dropped and the kept ones doubled; in evaluation they are the plain spikes
    ratio = float(train[train > 0].median() / evals[evals > 0].median())
    kept = float((train > 0).float().mean() / (evals > 0).float().mean())
    assert 1.9 < ratio < 2.1 and 0.4 < kept < 0.6, (ratio, kept)
    # gone afterwards: the same input gives the same output twice in training mode
    seen.clear()
    net.train()
    with torch.no_grad():
        a, b = net(x[:64], 2), net(x[:64], 2)
    assert torch.equal(a, b) and not first._forward_pre_hooks
    with pytest.raises(ValueError, match="dropout"):
        finetune(net, (x, y), (1,), dropout=1.0)
