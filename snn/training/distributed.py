"""Distributed training helpers on top of ``torch.distributed``.

Runs are launched with PyTorch's own launcher, which sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` for every process::

    torchrun --nproc_per_node 4 -m snn.training.cli digits-events --root data   # one node
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --nproc_per_node 8 ...  # several nodes

:func:`setup` joins the process group those variables describe (NCCL on CUDA, gloo on CPU);
the trainer then wraps the model in :class:`~torch.nn.parallel.DistributedDataParallel` and
gives every process its shard of each batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_gather_objects",
    "all_reduce_sum",
    "average_gradients",
    "cleanup",
    "full_state",
    "load_full_state",
    "setup",
    "shard",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the run.

    Attributes:
        rank: global rank (0 on a single process).
        world_size: number of processes.
        local_rank: rank on this node (selects the GPU).
        owns_group: whether :func:`setup` created the process group (and
            :func:`cleanup` should destroy it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0, the process that writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def setup(backend: str | None = None) -> DistInfo:
    """Join the process group described by the launcher's environment variables.

    Without them (or with ``WORLD_SIZE=1``) this is a single-process run. A group that is
    already initialised is used as it is.

    Args:
        backend: ``"nccl"``, ``"gloo"``...; default NCCL when CUDA is available, else gloo.
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), False)
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), True)


def cleanup(info: DistInfo) -> None:
    """Destroy the process group if :func:`setup` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over all processes (in place; returned for convenience)."""
    if info.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def shard(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Shard ``model`` over the processes with FSDP2 (``fully_shard``), in place.

    Every direct child holding parameters becomes its own unit (its parameters are gathered
    for its forward and backward only), then the root takes the rest. Scalar parameters
    (a parametric LIF's decay, a learnable threshold), which ``fully_shard`` cannot split,
    stay replicated: their gradients must be averaged with :func:`average_gradients` after
    each backward pass. Neuron state stays a plain per-process attribute: each process's
    neurons hold the state of its own samples.

    Returns:
        the replicated (scalar) parameters.
    """
    from torch.distributed.fsdp import fully_shard

    replicated = [p for p in model.parameters() if p.dim() == 0]  # same order on every process
    scalars = set(replicated)
    for child in model.children():
        if any(p.dim() > 0 for p in child.parameters()):
            fully_shard(child, ignored_params=scalars & set(child.parameters()) or None)
    fully_shard(model, ignored_params=scalars or None)
    return replicated


def average_gradients(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    """Average the gradients of replicated ``params`` over the processes (in place)."""
    if not info.distributed:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= info.world_size


def full_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, sharded: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Full (unsharded, CPU) state dicts of ``model`` and ``optimizer``; a collective call
    on every process when ``sharded``."""
    if not sharded:
        return model.state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_state_dict(model, optimizer, options=options)


def load_full_state(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    sharded: bool,
) -> None:
    """Load a checkpoint written from :func:`full_state` into ``model`` and ``optimizer``
    (sharded or not)."""
    if not sharded:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    set_state_dict(
        model,
        optimizer,
        model_state_dict=state["model"],
        optim_state_dict=state["optimizer"],
        options=StateDictOptions(full_state_dict=True),
    )
