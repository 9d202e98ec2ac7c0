"""Health checks of a training run: non-finite gradients and layers that never spike."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from snn.neurons import neurons_of
from snn.training.distributed import DistInfo

__all__ = ["SilenceWatch", "check_gradients"]


def _local(grad: Tensor) -> Tensor:
    # a sharded (DTensor) gradient is checked on this process's shard; the flags are combined
    # over the processes below
    return grad.to_local() if hasattr(grad, "to_local") else grad


def check_gradients(model: nn.Module, info: DistInfo | None = None) -> list[str]:
    """Names of the parameters of ``model`` whose gradient holds a NaN or an infinity.

    Works for every dtype (float32, bfloat16, float16 without a grad scaler...). In a
    distributed run the answer is the same on every process: a non-finite value on any
    process's shard counts for all, so that all of them skip the same step.

    Args:
        model: the (unwrapped) model after ``backward()``.
        info: the run's distributed layout (single process when ``None``).
    """
    named = [(n, _local(p.grad)) for n, p in model.named_parameters() if p.grad is not None]
    if not named:
        flags = torch.zeros(0, dtype=torch.float32)
    else:
        flags = torch.stack([(~torch.isfinite(g)).any() for _, g in named]).float()
    if info is not None and info.distributed:
        device = named[0][1].device if named else torch.device("cpu")
        flags = flags.to(device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    if not bool(flags.any()):
        return []
    return [name for (name, _), bad in zip(named, flags.tolist(), strict=True) if bad]


class SilenceWatch:
    """Counts the spikes of every spiking neuron layer of ``model`` over an epoch, to name the
    layers that never fired.

    The statistics live in this object (forward hooks, removed by :meth:`close`); nothing is
    written onto the model.
    """

    def __init__(self, model: nn.Module):
        self.names = [name or "<model>" for name, m in neurons_of(model) if m.spiking]
        self._modules = [m for _, m in neurons_of(model) if m.spiking]
        self._counts: Tensor | None = None
        self._handles: list = []

    def start(self, device: torch.device) -> None:
        """Begin counting (an epoch)."""
        self.close()
        self._counts = torch.zeros(len(self._modules), dtype=torch.float64, device=device)
        for i, m in enumerate(self._modules):
            self._handles.append(m.register_forward_hook(self._hook(i)))

    def _hook(self, index: int):
        def hook(module: nn.Module, inputs: tuple, out: Tensor) -> None:
            if self._counts is not None and isinstance(out, Tensor):
                self._counts[index] += out.detach().ne(0).sum().to(self._counts)

        return hook

    def stop(self, info: DistInfo | None = None) -> list[str]:
        """Stop counting; the names of the layers without a single spike (over all
        processes)."""
        counts = self._counts
        self.close()
        if counts is None:
            return []
        if info is not None and info.distributed:
            dist.all_reduce(counts, op=dist.ReduceOp.SUM)
        return [n for n, c in zip(self.names, counts.tolist(), strict=True) if c == 0]

    def close(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._counts = None
