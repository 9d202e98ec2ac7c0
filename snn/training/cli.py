"""``snn train TASK --root PATH ...``: train a reference model on a task from the command line.

Options come, from weakest to strongest, from :class:`~snn.training.TrainConfig`'s defaults,
the task's recipe (:data:`snn.training.tasks.TASKS`), a ``--config`` JSON/TOML file and the
command-line flags. Several processes or GPUs: launch with ``torchrun``, e.g.
``torchrun --nproc_per_node 4 -m snn.training.cli dvs-gesture --root data/gesture``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from snn.training.config import (
    LOSSES,
    OPTIMIZERS,
    PARALLEL,
    SCHEDULERS,
    TrainConfig,
    load_config,
)

__all__ = ["add_train_arguments", "config_from_args", "main", "run_train"]

# flag -> (TrainConfig field, type, help)
_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--model", "model", str, "model name in snn.models.MODELS (default: the task's)"),
    ("--epochs", "epochs", int, "number of epochs"),
    ("--batch-size", "batch_size", int, "global batch size (split over processes)"),
    ("--lr", "lr", float, "learning rate"),
    ("--weight-decay", "weight_decay", float, "weight decay"),
    ("--steps", "steps", int, "time bins per sample (default: the task's)"),
    ("--amp-dtype", "amp_dtype", str, "float16 or bfloat16 (default by device)"),
    ("--grad-clip", "grad_clip", float, "clip the gradient norm (0: off)"),
    ("--device", "device", str, "auto, cpu, cuda, cuda:1, ..."),
    ("--seed", "seed", int, "random seed"),
    ("--num-workers", "num_workers", int, "data-loading processes"),
    ("--out-dir", "out_dir", str, "folder of checkpoints and metrics"),
    ("--stop-after", "stop_after", int, "stop after this many epochs (resume later)"),
]


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``train`` command's arguments to ``parser``; returns it."""
    from snn.training.tasks import TASKS

    parser.add_argument("dataset", choices=sorted(TASKS), help="training task")
    parser.add_argument("--root", default=None, help="folder of the dataset's files")
    parser.add_argument("--config", default=None, help="JSON or TOML file of TrainConfig options")
    parser.add_argument(
        "--model-kwargs", default=None, help="model options as JSON, e.g. '{\"channels\": 64}'"
    )
    for flag, _name, kind, text in _OPTIONS:
        parser.add_argument(flag, type=kind, default=None, help=text)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="optimizer")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default=None, help="lr schedule")
    parser.add_argument("--loss", choices=LOSSES, default=None, help="loss on the readout")
    parser.add_argument(
        "--parallel",
        choices=PARALLEL,
        default=None,
        help="distributed runs: ddp (replicated model) or fsdp (sharded, FSDP2)",
    )
    parser.add_argument(
        "--readout",
        choices=("mean", "max", "last", "count"),
        default=None,
        help="reduction of the outputs over time",
    )
    for name, text in (
        ("amp", "mixed precision"),
        ("resume", "continue from OUT_DIR/last.pt"),
        ("tensorboard", "TensorBoard logging"),
        ("progress", "progress bars"),
        ("sync-batchnorm", "synchronise batch-norm statistics over GPUs"),
        ("memory-efficient", "checkpointed blocks with packed spikes (less memory, more time)"),
    ):
        parser.add_argument(
            f"--{name}", action=argparse.BooleanOptionalAction, default=None, help=text
        )
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's :class:`TrainConfig`: defaults < task recipe < ``--config`` file < flags.

    Raises:
        ValueError: for an unknown task, an invalid config file or invalid values.
    """
    from snn.training.tasks import TASKS

    task = TASKS[args.dataset]
    options: dict[str, Any] = {"dataset": args.dataset, **task.settings}
    flags = {name: getattr(args, name, None) for _f, name, _k, _h in _OPTIONS}
    for name in (
        "optimizer",
        "scheduler",
        "loss",
        "readout",
        "amp",
        "resume",
        "tensorboard",
        "parallel",
        "memory_efficient",
    ):
        flags[name] = getattr(args, name, None)
    flags["sync_batchnorm"] = getattr(args, "sync_batchnorm", None)
    flags["progress"] = getattr(args, "progress", None)
    flags["root"] = args.root
    if args.model_kwargs is not None:
        try:
            flags["model_kwargs"] = json.loads(args.model_kwargs)
        except json.JSONDecodeError as err:
            raise ValueError(f"--model-kwargs is not valid JSON: {err}") from None
    flags = {k: v for k, v in flags.items() if v is not None}
    if args.config:
        return load_config(args.config, base=options, **flags)
    return TrainConfig(**{**options, **flags})


def run_train(args: argparse.Namespace) -> int:
    """Train as ``args`` say (see :func:`add_train_arguments`); returns the exit status."""
    from snn.models import create_model
    from snn.training.tasks import TASKS, build_task_data
    from snn.training.trainer import fit, seed_everything

    config = config_from_args(args)
    task = TASKS[config.dataset]
    seed_everything(config.seed)
    train_set, test_set = build_task_data(config.dataset, config.root, config.steps, config.seed)
    name = config.model or task.model
    kwargs = {**(task.model_kwargs if name == task.model else {}), **config.model_kwargs}
    model = create_model(name, **kwargs)
    result = fit(model, train_set, test_set, config)
    if result.checkpoint is not None:
        print(
            f"{config.dataset}: {name} test accuracy {result.final_accuracy:.4f} "
            f"(best {result.best_accuracy:.4f}) after {len(result.history)} epochs; "
            f"checkpoint {result.checkpoint}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m snn.training.cli TASK ...`` (the entry point for ``torchrun``)."""
    parser = add_train_arguments(
        argparse.ArgumentParser(prog="snn train", description="Train a reference SNN.")
    )
    return run_train(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
