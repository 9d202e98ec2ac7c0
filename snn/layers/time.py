"""Apply stateless layers to time-first sequences by folding time into the batch."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["TimeDistributed", "fold_time", "unfold_time"]


def fold_time(x: Tensor) -> Tensor:
    """``[T, B, ...] -> [T*B, ...]`` (a view when ``x`` is contiguous)."""
    if x.dim() < 2:
        raise ValueError(f"expected a time-first sequence [T, B, ...], got shape {tuple(x.shape)}")
    return x.flatten(0, 1)


def unfold_time(x: Tensor, steps: int) -> Tensor:
    """``[T*B, ...] -> [T, B, ...]`` for ``steps`` = T."""
    if x.shape[0] % steps:
        raise ValueError(f"leading dimension {x.shape[0]} is not a multiple of T = {steps}")
    return x.unflatten(0, (steps, x.shape[0] // steps))


class TimeDistributed(nn.Sequential):
    """Run stateless layers (Conv, Linear, BatchNorm, pooling, ...) on every time step of a
    time-first sequence ``[T, B, ...]`` in one call, by folding time into the batch.

    BatchNorm therefore normalises over time and batch together, as in SpikingJelly's
    ``SeqToANNContainer``. Stateful neurons must not be wrapped (they need the time loop).

    Args:
        *layers: modules applied in order, as in ``nn.Sequential``.

    Raises:
        ValueError: when called on fewer than 3 dimensions (e.g. one step ``[B, F]``).

    Example:
        >>> layer = TimeDistributed(nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8))
        >>> layer(torch.rand(10, 4, 2, 32, 32)).shape
        torch.Size([10, 4, 8, 32, 32])
    """

    def __init__(self, *layers: nn.Module):
        from snn.neurons.base import BaseNeuron

        for layer in layers:
            if isinstance(layer, BaseNeuron):
                raise TypeError(
                    f"TimeDistributed wraps stateless layers; {type(layer).__name__} is a neuron "
                    "and runs over time itself"
                )
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 3:
            raise ValueError(
                f"TimeDistributed expects a time-first sequence [T, B, features...], got shape "
                f"{tuple(x.shape)}; for one step [B, F] call the wrapped layers directly "
                "(layer[0](x), or nn.Sequential(*layer)) or add a time axis with x.unsqueeze(0)"
            )
        return unfold_time(super().forward(fold_time(x)), x.shape[0])
