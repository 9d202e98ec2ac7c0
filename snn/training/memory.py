"""Memory-efficient back-propagation through time: activation checkpointing with explicit
neuron state, compact spike storage and time chunks.

Most of the peak memory of SNN training is the activations kept for the backward pass,
``T x batch x width`` of them per layer. :func:`checkpoint` keeps only the input of a block,
packed losslessly into the fewest bits its values need when it is spikes or small spike counts
(:mod:`snn.training.compact`), and recomputes the block inside the backward pass, one block at
a time. Neuron state is handed to the recomputation explicitly, so it starts from the state the
forward started from, and buffers (batch-norm running statistics) are put back after it, so
gradients, outputs and statistics equal those of the plain path bit for bit.

:func:`memory_efficient` applies this to a whole model in place with one call: every block
(a submodule holding neurons) and every run of a plain :class:`torch.nn.Sequential` that ends
in a neuron becomes one checkpointed unit, so each unit's input is the spike output of the unit
before it. Parameter names and ``state_dict`` keys do not change; :func:`plain` undoes it.

Time chunks (``chunks > 1``) further split every unit's sequence ``[T, B, ...]`` into
consecutive chunks that are checkpointed separately with the state carried between them. This
is exact only for units whose computation at step ``t`` does not look at other steps: a unit
holding a batch norm in training mode (which normalises over all ``T x B`` samples) is refused
with a :class:`ValueError` naming the layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as torch_checkpoint

from snn.neurons import BaseNeuron
from snn.training.compact import PackedSpikes, pack, unpack

__all__ = ["checkpoint", "memory_efficient", "plain"]


class _Anchor(torch.autograd.Function):
    """A zero-strided stand-in for ``x`` that carries the gradient back to ``x`` without
    keeping its values alive."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.new_zeros(()).expand_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


class _Restore(torch.autograd.Function):
    """The unpacked input inside the checkpointed function; its gradient flows to the
    anchor (and so to the original input)."""

    @staticmethod
    def forward(ctx: Any, anchor: Tensor, packed: PackedSpikes) -> Tensor:
        return unpack(packed)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


def _neurons(module: nn.Module) -> list[BaseNeuron]:
    return [m for m in module.modules() if isinstance(m, BaseNeuron)]


def _check_time_separable(module: nn.Module, name: str) -> None:
    for sub_name, sub in module.named_modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm) and sub.training:
            where = f"{name}.{sub_name}".strip(".")
            raise ValueError(
                f"time chunks: layer {where!r} ({type(sub).__name__} in training mode) "
                "normalises over all time steps, so chunking the sequence would change it; "
                "use chunks=1 for this model"
            )


class _Region:
    """The function checkpointed for one chunk: loads the start states, runs the module, and
    in a recomputation puts the states and buffers back afterwards."""

    def __init__(self, module: nn.Module, neurons: list[BaseNeuron], packed: Any):
        self.module = module
        self.neurons = neurons
        self.starts = [n.state for n in neurons]
        self.packed = packed
        self.calls = 0

    def __call__(self, x: Tensor) -> Tensor:
        recomputing = self.calls > 0
        self.calls += 1
        if self.packed is not None:
            x = _Restore.apply(x, self.packed)
        if recomputing:
            kept = [n.state for n in self.neurons]
            buffers = [(b, b.detach().clone()) for b in self.module.buffers()]
        for n, s in zip(self.neurons, self.starts, strict=True):
            n.state = s
            n.__dict__["_explicit_state"] = True
            n.__dict__["_replaying"] = recomputing
        try:
            return _call_plain(self.module, x)
        finally:
            for n in self.neurons:
                n.__dict__["_explicit_state"] = False
                n.__dict__["_replaying"] = False
            if recomputing:
                for n, s in zip(self.neurons, kept, strict=True):
                    n.state = s
                with torch.no_grad():
                    for b, saved in buffers:
                        b.copy_(saved)


def _call_plain(module: nn.Module, x: Tensor) -> Tensor:
    patched = module.__dict__.pop("forward", None)
    try:
        return module(x)
    finally:
        if patched is not None:
            module.__dict__["forward"] = patched


def checkpoint(module: nn.Module, x: Tensor, *, chunks: int = 1, compress: bool = True) -> Tensor:
    """Run ``module`` on the sequence ``x`` ``[T, B, ...]`` keeping only (packed) inputs for
    the backward pass, which recomputes the module from the neuron states the forward
    started from.

    Args:
        module: maps ``[T, B, ...]`` to ``[T, B, ...]``; its neurons keep their state across
            the call as usual.
        x: the input sequence, time-first.
        chunks: split the sequence into this many consecutive chunks, each checkpointed
            separately (the module must be time-separable, see the module docstring).
        compress: store ``x`` in the fewest bits its values need when they are small
            non-negative integers (spikes, spike counts).

    Returns:
        the module's output, equal to ``module(x)``.

    Raises:
        ValueError: for ``chunks < 1``, more chunks than steps, or a unit that is not
            time-separable with ``chunks > 1``.
    """
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1, got {chunks}")
    if chunks > 1:
        if x.dim() < 1 or x.shape[0] < chunks:
            raise ValueError(
                f"chunks={chunks} needs a sequence [T, B, ...] with T >= chunks, got shape "
                f"{tuple(x.shape)}"
            )
        _check_time_separable(module, "" if isinstance(module, _Group) else type(module).__name__)
    if not torch.is_grad_enabled():
        return _call_plain(module, x)
    neurons = _neurons(module)
    pieces = x.tensor_split(chunks) if chunks > 1 else (x,)
    outs = []
    for piece in pieces:
        packed = pack(piece) if compress else None
        carrier = piece if packed is None else _Anchor.apply(piece)
        region = _Region(module, neurons, packed)
        outs.append(torch_checkpoint(region, carrier, use_reentrant=False))
        del carrier, packed
    return outs[0] if len(outs) == 1 else torch.cat(outs)


class _Unit:
    """Replacement ``forward`` of a checkpointed block."""

    def __init__(self, module: nn.Module, chunks: int, compress: bool):
        self.module, self.chunks, self.compress = module, chunks, compress

    def __call__(self, x: Tensor) -> Tensor:
        return checkpoint(self.module, x, chunks=self.chunks, compress=self.compress)


class _Segments:
    """Replacement ``forward`` of a plain ``nn.Sequential``: runs of layers ending in a
    neuron-holding layer are checkpointed together; layers after the last one run plainly."""

    def __init__(self, module: nn.Sequential, prefix: str, chunks: int, compress: bool):
        self.module, self.chunks, self.compress = module, chunks, compress
        self.groups: list[tuple[bool, nn.Module]] = []
        run: list[tuple[str, nn.Module]] = []
        for name, child in module.named_children():
            run.append((f"{prefix}.{name}".lstrip("."), child))
            if _neurons(child):
                self.groups.append((True, _Group(run)))
                run = []
        if run:
            self.groups.append((False, _Group(run)))

    def __call__(self, x: Tensor) -> Tensor:
        for checkpointed, group in self.groups:
            if checkpointed:
                x = checkpoint(group, x, chunks=self.chunks, compress=self.compress)
            else:
                x = group(x)
        return x


class _Group(nn.Module):
    """Layers run one after the other (not registered with the model: no new names)."""

    def __init__(self, named_layers: Sequence[tuple[str, nn.Module]]):
        super().__init__()
        self.__dict__["names"] = [n for n, _ in named_layers]
        self.__dict__["layers"] = [m for _, m in named_layers]

    def modules(self):  # type: ignore[override]
        for layer in self.__dict__["layers"]:
            yield from layer.modules()

    def buffers(self, recurse: bool = True):  # type: ignore[override]
        for layer in self.__dict__["layers"]:
            yield from layer.buffers(recurse)

    def named_modules(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        for prefix, layer in zip(self.__dict__["names"], self.__dict__["layers"], strict=True):
            for name, sub in layer.named_modules():
                yield (f"{prefix}.{name}".strip("."), sub)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.__dict__["layers"]:
            x = layer(x)
        return x


def _fine(module: nn.Module) -> bool:
    """Whether a block is checkpointed piecewise (each of its sequential runs separately)
    rather than whole: when every child holding neurons is a plain ``nn.Sequential`` or a
    neuron, the pieces' inputs are spikes, which pack into bits."""
    holders = [c for c in module.children() if _neurons(c)]
    return bool(holders) and all(
        type(c) is nn.Sequential or isinstance(c, BaseNeuron) for c in holders
    )


def _apply(module: nn.Module, prefix: str, root: bool, chunks: int, compress: bool) -> int:
    if not _neurons(module):
        return 0
    if type(module) is nn.Sequential:
        module.__dict__["forward"] = _Segments(module, prefix, chunks, compress)
        return 1
    if root or isinstance(module, (nn.ModuleList, nn.ModuleDict)) or _fine(module):
        return sum(
            _apply(child, f"{prefix}.{name}".lstrip("."), False, chunks, compress)
            for name, child in module.named_children()
        )
    module.__dict__["forward"] = _Unit(module, chunks, compress)
    return 1


def memory_efficient(model: nn.Module, *, chunks: int = 1, compress: bool = True) -> nn.Module:
    """Train ``model`` with checkpointed blocks, packed spike inputs and optional time
    chunks; in place, returns ``model``.

    Gradients, outputs and batch-norm statistics equal those of the plain model bit for bit
    (on a deterministic device); only when the backward pass runs and how much it keeps
    change. Evaluation under ``torch.no_grad`` runs the plain path.

    Args:
        model: a spiking model taking ``[T, B, ...]``.
        chunks: time chunks per checkpointed unit (``1``: whole sequences).
        compress: pack spike inputs of the units into the fewest bits.

    Raises:
        ValueError: for ``chunks < 1``, a model without neurons, or (at the first forward
            pass) a unit that is not time-separable with ``chunks > 1``.
    """
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1, got {chunks}")
    plain(model)
    if not _apply(model, "", True, chunks, compress):
        raise ValueError(
            f"memory_efficient: {type(model).__name__} holds no spiking neuron to checkpoint"
        )
    return model


def plain(model: nn.Module) -> nn.Module:
    """Undo :func:`memory_efficient` on ``model``; returns ``model``."""
    for m in model.modules():
        if isinstance(m.__dict__.get("forward"), (_Unit, _Segments)):
            del m.__dict__["forward"]
    return model
