"""Encoders: turn static inputs ``[B, ...]`` into time-first sequences ``[T, B, ...]``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["DeltaEncoder", "LatencyEncoder", "PoissonEncoder", "RepeatEncoder"]


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return steps


def _check_unit_interval(x: Tensor, who: str) -> None:
    if not x.is_floating_point():
        raise TypeError(f"{who} expects a floating-point input, got {x.dtype}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"{who} expects intensities in [0, 1], got values in "
            f"[{float(x.min())}, {float(x.max())}]; normalise the input first"
        )


class RepeatEncoder(nn.Module):
    """Direct encoding: the analog input repeated at every step (the first layer integrates it).

    Args:
        steps: number of time steps T.
    """

    def __init__(self, steps: int):
        super().__init__()
        self.steps = _check_steps(steps)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, ...] -> [T, B, ...]`` (an expanded view, no copy)."""
        return x.unsqueeze(0).expand(self.steps, *x.shape)

    def extra_repr(self) -> str:
        return f"steps={self.steps}"


class PoissonEncoder(nn.Module):
    """Rate coding: at each step a pixel of intensity ``p`` in ``[0, 1]`` spikes with
    probability ``p * max_rate`` (Bernoulli per step, the discrete-time Poisson process).

    Args:
        steps: number of time steps T.
        max_rate: spike probability per step at intensity 1, in ``(0, 1]``.
        generator: random generator for reproducible spikes (``None``: the global one).
    """

    def __init__(self, steps: int, max_rate: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        self.steps = _check_steps(steps)
        if not 0 < max_rate <= 1:
            raise ValueError(f"max_rate must be in (0, 1], got {max_rate}")
        self.max_rate = float(max_rate)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        _check_unit_interval(x, "PoissonEncoder")
        p = (x * self.max_rate).unsqueeze(0).expand(self.steps, *x.shape)
        u = torch.rand(p.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        return (u < p).to(x.dtype)

    def extra_repr(self) -> str:
        return f"steps={self.steps}, max_rate={self.max_rate}"


class LatencyEncoder(nn.Module):
    """Time-to-first-spike coding: each input spikes once, brighter inputs earlier.

    Intensity ``p`` in ``[0, 1]`` fires at step ``round((1 - p) * (T - 1))`` when
    ``linear=True``, or at ``round(tau * ln(p / (p - threshold)))`` clipped to ``T - 1`` (the RC
    charging time) otherwise. Inputs at or below ``threshold`` never fire.

    Args:
        steps: number of time steps T.
        threshold: intensities ``<= threshold`` stay silent.
        linear: linear latency instead of the logarithmic RC law.
        tau: RC time constant in steps for the logarithmic law.
    """

    def __init__(self, steps: int, threshold: float = 0.0, linear: bool = True, tau: float = 5.0):
        super().__init__()
        self.steps = _check_steps(steps)
        if not 0 <= threshold < 1:
            raise ValueError(f"threshold must be in [0, 1), got {threshold}")
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        self.threshold = float(threshold)
        self.linear = bool(linear)
        self.tau = float(tau)

    def spike_times(self, x: Tensor) -> Tensor:
        """Firing step of each input (``T`` where it never fires), an integer tensor."""
        _check_unit_interval(x, "LatencyEncoder")
        fires = x > self.threshold
        if self.linear:
            t = torch.round((1 - x) * (self.steps - 1))
        else:
            safe = torch.where(fires, x, torch.ones_like(x))
            t = torch.round(self.tau * torch.log(safe / (safe - self.threshold).clamp_min(1e-12)))
        t = t.clamp(0, self.steps - 1).long()
        return torch.where(fires, t, torch.full_like(t, self.steps))

    def forward(self, x: Tensor) -> Tensor:
        t = self.spike_times(x)
        steps = torch.arange(self.steps, device=x.device).view(-1, *([1] * x.dim()))
        return (steps == t.unsqueeze(0)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"steps={self.steps}, threshold={self.threshold}, linear={self.linear}"


class DeltaEncoder(nn.Module):
    """Delta modulation of a sequence ``[T, B, ...]``: a +1 (ON) or -1 (OFF) spike whenever the
    signal has moved by at least ``threshold`` since the last spike of that element, the way an
    event camera's pixel works.

    Args:
        threshold: change needed for a spike (positive).
        off_spikes: emit -1 for decreases; otherwise decreases are silent.
    """

    def __init__(self, threshold: float = 0.1, off_spikes: bool = True):
        super().__init__()
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        self.threshold = float(threshold)
        self.off_spikes = bool(off_spikes)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2:
            raise ValueError(f"DeltaEncoder expects a sequence [T, B, ...], got {tuple(x.shape)}")
        ref = x[0].clone()
        out = torch.zeros_like(x)
        for t in range(1, x.shape[0]):
            diff = x[t] - ref
            up = diff >= self.threshold
            down = diff <= -self.threshold
            spike = up.to(x.dtype) - (down.to(x.dtype) if self.off_spikes else 0)
            out[t] = spike
            ref = torch.where(up | down, x[t], ref)
        return out

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, off_spikes={self.off_spikes}"
