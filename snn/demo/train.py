"""Training and evaluation loops of the demo (small data: whole tensors, no DataLoader)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import snn

__all__ = ["accuracy", "snn_accuracy_vs_steps", "snn_logits", "train"]

Forward = Callable[[nn.Module, Tensor], Tensor]


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, unit="epoch")


def snn_logits(model: nn.Module, x: Tensor, steps: int) -> Tensor:
    """Mean classifier output over ``steps`` steps of the image repeated (direct coding)."""
    snn.reset(model)
    return model(x.unsqueeze(0).expand(steps, *x.shape)).mean(0)


def train(
    model: nn.Module,
    forward: Forward,
    x: Tensor,
    y: Tensor,
    *,
    epochs: int,
    lr: float = 1e-2,
    batch_size: int = 64,
    seed: int = 0,
    desc: str = "training",
    progress: bool = True,
) -> list[float]:
    """Adam with cosine decay and cross-entropy on ``forward(model, batch)``; returns the mean
    loss of every epoch."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    losses = []
    model.train()
    with _progress(epochs, desc, progress) as bar:
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen).to(x.device)
            total = 0.0
            for i in range(0, len(x), batch_size):
                idx = order[i : i + batch_size]
                loss = F.cross_entropy(forward(model, x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            sched.step()
            losses.append(total / len(x))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            bar.update()
    model.eval()
    return losses


@torch.no_grad()
def accuracy(logits: Tensor, y: Tensor) -> float:
    """Fraction of correct argmax predictions."""
    return float((logits.argmax(-1) == y).float().mean())


@torch.no_grad()
def snn_accuracy_vs_steps(
    model: nn.Module, x: Tensor, y: Tensor, steps: Sequence[int]
) -> dict[int, float]:
    """Accuracy of the directly trained SNN after each T: one run to the largest T, the mean
    output over the first T steps read along the way (the network is causal)."""
    model.eval()
    snn.reset(model)
    t_max = max(steps)
    out = model(x.unsqueeze(0).expand(t_max, *x.shape))  # [T, B, 10]
    csum = out.cumsum(0)
    return {t: accuracy(csum[t - 1] / t, y) for t in sorted(steps)}
