"""Training SNNs: the loop, its configuration, checkpoints, metrics and distributed helpers.

Python API::

    from snn.training import TrainConfig, fit
    result = fit(model, train_set, test_set, TrainConfig(epochs=10, out_dir="runs/x"))

Command line: ``snn train DATASET --root PATH ...`` (see :mod:`snn.training.cli`), launched with
``torchrun`` for several processes or GPUs.
"""

from snn.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from snn.training.config import TrainConfig, load_config
from snn.training.distributed import DistInfo
from snn.training.memory import checkpoint, memory_efficient, plain
from snn.training.metrics import MetricsLogger
from snn.training.trainer import TrainResult, evaluate, fit, resolve_device, seed_everything

__all__ = [
    "CheckpointError",
    "DistInfo",
    "MetricsLogger",
    "TrainConfig",
    "TrainResult",
    "checkpoint",
    "evaluate",
    "fit",
    "load_checkpoint",
    "load_config",
    "memory_efficient",
    "plain",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
]
