"""Readouts: reduce a time-first sequence ``[T, B, ...]`` to ``[B, ...]``."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["READOUTS", "SpikeCount", "SpikeRate", "TimeLast", "TimeMax", "TimeMean", "readout"]


def _check(x: Tensor) -> None:
    if x.dim() < 2:
        raise ValueError(f"readout expects a time-first sequence [T, B, ...], got {tuple(x.shape)}")


def readout(x: Tensor, mode: str) -> Tensor:
    """Reduce ``x`` (``[T, B, ...]``) over time by ``mode``: ``"count"`` (sum), ``"rate"`` or
    ``"mean"`` (mean), ``"last"`` (final step) or ``"max"`` (maximum)."""
    _check(x)
    if mode == "count":
        return x.sum(0)
    if mode in ("rate", "mean"):
        return x.mean(0)
    if mode == "last":
        return x[-1]
    if mode == "max":
        return x.max(0).values
    raise ValueError(f"unknown readout mode {mode!r}; expected one of {READOUTS}")


READOUTS = ("count", "rate", "mean", "last", "max")


class _Readout(nn.Module):
    mode = ""

    def forward(self, x: Tensor) -> Tensor:
        return readout(x, self.mode)


class SpikeCount(_Readout):
    """Number of spikes per output over time: ``[T, B, ...] -> [B, ...]``."""

    mode = "count"


class SpikeRate(_Readout):
    """Mean firing rate per step over time: ``[T, B, ...] -> [B, ...]``."""

    mode = "rate"


class TimeMean(_Readout):
    """Mean over time, e.g. of a leaky integrator's membrane (``LI``)."""

    mode = "mean"


class TimeLast(_Readout):
    """Last time step, e.g. the final membrane potential of a readout layer."""

    mode = "last"


class TimeMax(_Readout):
    """Maximum over time."""

    mode = "max"
