"""Training configuration: one dataclass, filled from arguments and/or a JSON or TOML file."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LOSSES", "OPTIMIZERS", "PARALLEL", "SCHEDULERS", "TrainConfig", "load_config"]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("cosine", "none")
LOSSES = ("ce", "mse")
PARALLEL = ("ddp", "fsdp")
_READOUTS = ("mean", "max", "last", "count")


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Attributes:
        dataset: task name for the command line (see :data:`snn.training.tasks.TASKS`).
        root: folder of the dataset's files.
        model: name in :data:`snn.models.MODELS` (empty: the task's default model).
        model_kwargs: options passed to the model builder.
        epochs: number of epochs.
        batch_size: global batch size (split evenly over distributed processes).
        lr: learning rate.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (momentum 0.9).
        weight_decay: weight decay.
        scheduler: ``"cosine"`` (annealed to 0 over ``epochs``) or ``"none"``.
        loss: ``"ce"`` (cross-entropy on the readout) or ``"mse"`` (readout against one-hot
            targets, as Fang et al. 2021).
        readout: reduction of the model's ``[T, B, C]`` output over time (``"mean"``,
            ``"max"``, ``"last"``, ``"count"``).
        steps: time steps (frames or bins) per sample for the command-line tasks (0: the
            task's default).
        amp: mixed precision (autocast) on the model's forward pass.
        amp_dtype: ``"float16"`` or ``"bfloat16"`` (empty: float16 on CUDA, bfloat16 on CPU).
        grad_clip: clip the gradient norm to this value (0: off).
        parallel: how distributed runs share the model: ``"ddp"`` (a full copy per process,
            gradients averaged by DistributedDataParallel) or ``"fsdp"`` (parameters, gradients
            and optimiser state sharded over the processes with FSDP2's ``fully_shard``).
        memory_efficient: train through :func:`snn.memory_efficient` (checkpointed blocks with
            packed spike inputs; same gradients, less memory, more time).
        sync_batchnorm: in distributed runs on GPUs, convert batch norms to
            :class:`torch.nn.SyncBatchNorm` so that their statistics cover the global batch.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        seed: seed of the initial weights, the shuffling and every random layer.
        num_workers: data-loading processes.
        out_dir: folder of checkpoints and metrics.
        resume: continue from ``out_dir/last.pt`` when it exists.
        stop_after: stop this invocation after so many epochs (0: run to ``epochs``), e.g. to
            fit a time-limited job slot; a later run with ``resume`` continues exactly.
        tensorboard: also log to TensorBoard when it is installed.
        progress: show progress bars (tqdm).
    """

    dataset: str = ""
    root: str = ""
    model: str = ""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    loss: str = "ce"
    readout: str = "mean"
    steps: int = 0
    amp: bool = False
    amp_dtype: str = ""
    grad_clip: float = 0.0
    parallel: str = "ddp"
    memory_efficient: bool = False
    sync_batchnorm: bool = False
    device: str = "auto"
    seed: int = 0
    num_workers: int = 0
    out_dir: str = "runs/snn"
    resume: bool = False
    stop_after: int = 0
    tensorboard: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        checks = [
            ("epochs", self.epochs >= 1, "an integer >= 1"),
            ("batch_size", self.batch_size >= 1, "an integer >= 1"),
            ("lr", self.lr > 0, "positive"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {OPTIMIZERS}"),
            ("scheduler", self.scheduler in SCHEDULERS, f"one of {SCHEDULERS}"),
            ("loss", self.loss in LOSSES, f"one of {LOSSES}"),
            ("readout", self.readout in _READOUTS, f"one of {_READOUTS}"),
            ("steps", self.steps >= 0, ">= 0"),
            ("amp_dtype", self.amp_dtype in ("", "float16", "bfloat16"), "float16 or bfloat16"),
            ("grad_clip", self.grad_clip >= 0, ">= 0"),
            ("parallel", self.parallel in PARALLEL, f"one of {PARALLEL}"),
            ("num_workers", self.num_workers >= 0, ">= 0"),
            ("stop_after", self.stop_after >= 0, ">= 0"),
            ("model_kwargs", isinstance(self.model_kwargs, dict), "a table/dict"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(
                    f"training config: {name} must be {expected}, got {getattr(self, name)!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def updated(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"training config: unknown option(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)


def load_config(
    path: str | os.PathLike, base: dict[str, Any] | None = None, **overrides: Any
) -> TrainConfig:
    """Read a :class:`TrainConfig` from a ``.json`` or ``.toml`` file.

    Precedence: the dataclass defaults < ``base`` < the file < ``overrides``.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: for another suffix, invalid syntax, unknown keys or invalid values (the
            message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        elif path.suffix.lower() == ".toml":
            data = _parse_toml(text)
        else:
            raise ValueError(f"{path}: expected a .json or .toml config file")
    except (json.JSONDecodeError, _toml_error()) as err:
        raise ValueError(f"{path}: invalid {path.suffix[1:].upper()}: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: the config must be a table of options, got {type(data).__name__}"
        )
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {unknown}; expected some of {sorted(known)}")
    try:
        return TrainConfig(**{**(base or {}), **data, **overrides})
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None


def _toml_module() -> Any:
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError as err:
            raise ValueError("reading TOML needs Python >= 3.11 or the tomli package") from err
    return tomllib


def _toml_error() -> type[Exception]:
    try:
        return _toml_module().TOMLDecodeError
    except ValueError:  # pragma: no cover
        return ValueError


def _parse_toml(text: str) -> Any:
    return _toml_module().loads(text)
