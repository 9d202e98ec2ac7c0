"""The training loop: surrogate-gradient training of time-first SNNs, single process or
distributed, with mixed precision, exact resume and per-epoch metrics.

Datasets yield ``(x, label)`` with ``x`` a sequence ``[T, ...]`` (frames or bins); the loader's
batches ``[B, T, ...]`` are turned time-first, ``[T, B, ...]``, before the model sees them. The
model returns ``[T, B, classes]``, reduced over time by ``config.readout`` into class scores.

Exact resume: the shuffling order of epoch ``e`` is a function of ``(seed, e)`` only, and every
process's global random generators are saved with the checkpoint at the end of each epoch and
restored on resume, so ``2 + 2`` epochs give the same weights as ``4`` (bit for bit on the CPU).

Distributed runs (``torchrun``): every process trains on its shard of each global batch
(:class:`~torch.utils.data.distributed.DistributedSampler`), gradients are averaged by
:class:`~torch.nn.parallel.DistributedDataParallel`, evaluation counts are summed over the
processes, and rank 0 writes checkpoints and metrics. With ``parallel="fsdp"`` the model is
sharded with FSDP2's ``fully_shard`` instead (parameters, gradients and optimiser state split
over the processes; checkpoints hold the full, gathered state, so a run can resume with either
mode); the update is the same. With a global batch of ``B`` on ``W``
processes each takes ``B / W`` samples per step, so the update equals the single-process one on
the same ``B`` samples (up to floating-point summation order) as long as the model has no batch
statistics (use ``SyncBatchNorm`` otherwise) and the dataset size is a multiple of ``W``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

import snn
from snn.layers import readout as reduce_time
from snn.training import distributed
from snn.training.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from snn.training.config import TrainConfig
from snn.training.metrics import MetricsLogger
from snn.training.monitoring import SilenceWatch, check_gradients

__all__ = ["TrainResult", "evaluate", "fit", "resolve_device", "seed_everything"]

_RANK_SEED_STRIDE = 1_000_003


@dataclass
class TrainResult:
    """Outcome of :func:`fit`.

    Attributes:
        history: one row of metrics per epoch (all epochs, resumed ones included).
        final_accuracy: test accuracy after the last epoch (``nan`` without a test set).
        best_accuracy: best test accuracy over the epochs.
        checkpoint: path of the last checkpoint (``None`` when not written).
        model: the trained model (unwrapped from DistributedDataParallel).
    """

    history: list[dict[str, Any]]
    final_accuracy: float
    best_accuracy: float
    checkpoint: Path | None
    model: nn.Module


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global generators."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str, info: distributed.DistInfo | None = None) -> torch.device:
    """``"auto"``: this process's GPU when CUDA is available, else the CPU.

    Raises:
        ValueError: for a CUDA device when CUDA is not available.
    """
    info = info or distributed.DistInfo()
    if device == "auto":
        device = f"cuda:{info.local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return dev


class _Shard(Sampler[int]):
    """Indices ``rank, rank + world, ...`` in order: each evaluation sample counted once."""

    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _time_first(x: Tensor) -> Tensor:
    if x.dim() < 2:
        raise ValueError(f"a batch must be [B, T, ...], got shape {tuple(x.shape)}")
    return x.transpose(0, 1).float()


def _loss(scores: Tensor, target: Tensor, kind: str) -> Tensor:
    if kind == "ce":
        return F.cross_entropy(scores, target)
    one_hot = F.one_hot(target, scores.shape[-1]).to(scores.dtype)
    return F.mse_loss(scores, one_hot)


def _amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype:
    if config.amp_dtype:
        return getattr(torch, config.amp_dtype)
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def _forward(model: nn.Module, x: Tensor, config: TrainConfig, device: torch.device) -> Tensor:
    snn.reset(model)
    with torch.autocast(device.type, dtype=_amp_dtype(config, device), enabled=config.amp):
        out = model(x)
    if out.dim() != 3:
        raise ValueError(f"the model must return [T, B, classes], got shape {tuple(out.shape)}")
    return reduce_time(out.float(), config.readout)


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    config: TrainConfig,
    device: torch.device,
    info: distributed.DistInfo | None = None,
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over ``loader`` (summed over processes)."""
    info = info or distributed.DistInfo()
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
    with torch.no_grad():
        for x, y in loader:
            x, y = _time_first(x.to(device)), y.to(device)
            scores = _forward(model, x, config, device)
            totals += torch.stack(
                [
                    _loss(scores, y, config.loss).double() * len(y),
                    (scores.argmax(-1) == y).sum().double(),
                    torch.tensor(float(len(y)), dtype=torch.float64, device=device),
                ]
            )
    distributed.all_reduce_sum(totals, info)
    loss_sum, correct, count = totals.tolist()
    if count == 0:
        return {"loss": math.nan, "accuracy": math.nan, "samples": 0}
    return {"loss": loss_sum / count, "accuracy": correct / count, "samples": int(count)}


class _Bar:
    """A progress bar that only displays: it never touches the data loader (``tqdm.auto``
    resolves to ``tqdm.asyncio``, which creates an extra iterator of the loader it wraps, and
    each data-loader iterator draws a seed from its generator) nor any random stream."""

    def __init__(self, total: int, enabled: bool, desc: str):
        self._bar = None
        if enabled:
            try:
                from tqdm.std import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def update(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _loader_seed(seed: int, epoch: int, rank: int) -> int:
    """Seed of the data loader's own generator in ``epoch``: its draws (one base seed per
    iterator, for the workers) leave the global streams alone, with or without workers, and
    depend on ``(seed, epoch, rank)`` only, so a resumed run draws the same."""
    return ((seed * 1_000_033 + epoch) * 4099 + rank) % 2**63


def _summary(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        if key in row:
            parts.append(f"{key} {row[key]:.4f}")
    if row.get("skipped_steps"):
        parts.append(f"skipped_steps {row['skipped_steps']}")
    parts.append(f"{row['seconds']:.1f} s")
    return "  ".join(parts)


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def fit(
    model: nn.Module,
    train_set: Dataset,
    test_set: Dataset | None,
    config: TrainConfig,
    *,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> TrainResult:
    """Train ``model`` on ``train_set`` for ``config.epochs`` epochs, evaluating on
    ``test_set`` after each.

    Writes ``last.pt`` (checkpoint after every epoch), ``best.pt`` (weights of the best test
    accuracy), ``metrics.csv``/``metrics.json`` and TensorBoard scalars to ``config.out_dir``
    (rank 0 only). With ``config.resume`` and an existing ``last.pt``, training continues after
    the last completed epoch.

    Args:
        model: maps ``[T, B, ...]`` to ``[T, B, classes]``.
        train_set: items ``(x [T, ...], label)``.
        test_set: same layout, or ``None``.
        config: the run's settings.
        collate_fn: batch assembly for the data loaders (default stacking).

    Raises:
        ValueError: for a global batch size not divisible by the number of processes, or a
            checkpoint that does not fit the model.
    """
    info = distributed.setup()
    try:
        return _fit(model, train_set, test_set, config, collate_fn, info)
    finally:
        distributed.cleanup(info)


def _fit(
    model: nn.Module,
    train_set: Dataset,
    test_set: Dataset | None,
    config: TrainConfig,
    collate_fn: Callable[[list[Any]], Any] | None,
    info: distributed.DistInfo,
) -> TrainResult:
    config.validate()
    if config.batch_size % info.world_size:
        raise ValueError(
            f"batch_size {config.batch_size} (global) must be divisible by the number of "
            f"processes, {info.world_size}"
        )
    device = resolve_device(config.device, info)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    out_dir = Path(config.out_dir)
    last_path = out_dir / "last.pt"

    if info.distributed and config.sync_batchnorm:
        if device.type != "cuda":
            raise ValueError("sync_batchnorm needs CUDA devices (torch.nn.SyncBatchNorm)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if config.memory_efficient:
        from snn.training.memory import memory_efficient

        memory_efficient(model)
    net: nn.Module = model
    fsdp = info.distributed and config.parallel == "fsdp"
    replicated: list[nn.Parameter] = []
    if fsdp:
        replicated = distributed.shard(model)
    elif info.distributed:
        ids = [device.index] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    optimizer = _optimizer(model, config)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
        if config.scheduler == "cosine"
        else None
    )
    scaler = torch.amp.GradScaler(
        device.type, enabled=config.amp and _amp_dtype(config, device) == torch.float16
    )
    sampler = DistributedSampler(
        train_set, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=config.seed
    )
    loader_options = {"num_workers": config.num_workers, "collate_fn": collate_fn}
    train_generator = torch.Generator()
    train_loader = DataLoader(
        train_set,
        batch_size=config.batch_size // info.world_size,
        sampler=sampler,
        generator=train_generator,
        **loader_options,
    )
    test_loader = None
    if test_set is not None:
        test_loader = DataLoader(
            test_set,
            batch_size=max(1, config.batch_size // info.world_size),
            sampler=_Shard(len(test_set), info.rank, info.world_size),
            generator=torch.Generator().manual_seed(config.seed),
            **loader_options,
        )

    start_epoch, history, best = 0, [], -math.inf
    if not config.resume and last_path.is_file() and info.is_main:
        warnings.warn(
            f"{last_path} exists from an earlier run and will be overwritten; pass --resume "
            "(TrainConfig.resume) to continue it, or choose another --out-dir",
            UserWarning,
            stacklevel=3,
        )
    if config.resume and last_path.is_file():
        state = load_checkpoint(last_path, map_location=device)
        try:
            distributed.load_full_state(model, optimizer, state, fsdp)
        except (RuntimeError, KeyError) as err:
            raise ValueError(f"{last_path}: checkpoint does not fit the model: {err}") from None
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, history = int(state["epoch"]), list(state["history"])
        best = float(state["best_accuracy"])
        rng = state["rng"]
        if len(rng) != info.world_size:
            raise ValueError(
                f"{last_path}: written by {len(rng)} process(es), resumed with "
                f"{info.world_size}; an exact resume needs the same number"
            )
        restore_rng(rng[info.rank])
        if info.is_main:
            left = max(config.epochs - start_epoch, 0)
            print(
                f"resuming from {last_path} after epoch {start_epoch}/{config.epochs} "
                f"({left} epoch(s) to go)",
                flush=True,
            )
    else:
        # The caller built (and seeded) the model; DDP broadcast rank 0's weights. From here
        # on every process draws its own reproducible stream for dropout and other random
        # layers.
        torch.manual_seed(config.seed + _RANK_SEED_STRIDE * info.rank)

    logger = MetricsLogger(out_dir, history, tensorboard=config.tensorboard, enabled=info.is_main)
    show = config.progress and info.is_main
    watch = SilenceWatch(model)
    try:
        end = config.epochs
        if config.stop_after:
            end = min(end, start_epoch + config.stop_after)
        for epoch in range(start_epoch, end):
            t0 = time.perf_counter()
            sampler.set_epoch(epoch)
            train_generator.manual_seed(_loader_seed(config.seed, epoch, info.rank))
            net.train()
            totals = torch.zeros(3, dtype=torch.float64, device=device)
            skipped = 0
            bar = _Bar(len(train_loader), show, f"epoch {epoch + 1}/{config.epochs}")
            watch.start(device)
            for x, y in train_loader:
                x, y = _time_first(x.to(device)), y.to(device)
                scores = _forward(net, x, config, device)
                loss = _loss(scores, y, config.loss)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                distributed.average_gradients(replicated, info)
                if scaler.is_enabled():
                    scaler.unscale_(optimizer)
                bad = check_gradients(model, info)
                if bad:
                    # float16 with the grad scaler: the scaler skips the step and lowers its
                    # scale (its normal search); otherwise skip the step here, loudly
                    skipped += 1
                    if not scaler.is_enabled():
                        warnings.warn(
                            f"epoch {epoch + 1}: non-finite gradients in {', '.join(bad)}; "
                            "optimiser step skipped",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                        optimizer.zero_grad(set_to_none=True)
                    else:
                        scaler.step(optimizer)
                        scaler.update()
                else:
                    if config.grad_clip:
                        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                bar.update()
                with torch.no_grad():
                    totals += torch.stack(
                        [
                            loss.detach().double() * len(y),
                            (scores.argmax(-1) == y).sum().double(),
                            torch.tensor(float(len(y)), dtype=torch.float64, device=device),
                        ]
                    )
            bar.close()
            silent = watch.stop(info)
            distributed.all_reduce_sum(totals, info)
            lr = optimizer.param_groups[0]["lr"]
            if scheduler is not None:
                scheduler.step()
            row: dict[str, Any] = {
                "epoch": epoch + 1,
                "train_loss": totals[0].item() / max(totals[2].item(), 1),
                "train_accuracy": totals[1].item() / max(totals[2].item(), 1),
                "lr": lr,
                "skipped_steps": skipped,
            }
            if test_loader is not None:
                metrics = evaluate(net, test_loader, config, device, info)
                row["test_loss"], row["test_accuracy"] = metrics["loss"], metrics["accuracy"]
            row["seconds"] = time.perf_counter() - t0
            logger.log(row)
            if info.is_main:
                print(_summary(row, config.epochs), flush=True)
                if silent:
                    warnings.warn(
                        f"epoch {epoch + 1}: no spike at all in layer(s) {', '.join(silent)}; "
                        "the network cannot learn through silent layers (check the input "
                        "scale, the thresholds and the initialisation)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            accuracy = row.get("test_accuracy", row["train_accuracy"])
            improved = accuracy > best
            best = max(best, accuracy)
            rng = distributed.all_gather_objects(capture_rng(), info)
            model_state, optimizer_state = distributed.full_state(model, optimizer, fsdp)
            if info.is_main:
                payload = {
                    "epoch": epoch + 1,
                    "model": model_state,
                    "optimizer": optimizer_state,
                    "scheduler": None if scheduler is None else scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "history": logger.history,
                    "best_accuracy": best,
                    "rng": rng,
                    "config": config.to_dict(),
                }
                save_checkpoint(last_path, payload)
                if improved:
                    save_checkpoint(out_dir / "best.pt", payload)
    finally:
        watch.close()
        logger.close()
    final = logger.history[-1].get("test_accuracy", math.nan) if logger.history else math.nan
    return TrainResult(
        history=logger.history,
        final_accuracy=float(final),
        best_accuracy=float(best),
        checkpoint=last_path if info.is_main and logger.history else None,
        model=model,
    )
