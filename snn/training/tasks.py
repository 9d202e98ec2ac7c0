"""Training tasks by name: a dataset turned into fixed-length frame sequences plus the reference
model and settings of its recipe (``snn train TASK --root PATH``).

Event streams become ``[T, 2, H, W]`` frames of event counts in ``T`` equal time bins (the
frame transform of :mod:`snn.datasets.transforms`); spiking audio (SHD/SSC) becomes
``[T, 700]`` binned channel counts. The recipes, their published target accuracies and the
accuracies measured here are listed in ``docs/recipes.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

__all__ = ["TASKS", "EventFrames", "Task", "build_task_data"]


@dataclass(frozen=True)
class EventFrames:
    """Events -> float32 tensor of event counts in ``steps`` equal time bins: ``[T, P, H, W]``
    for cameras, ``[T, channels]`` for spiking audio (``flatten=True``).

    Args:
        sensor_size: ``(W, H, P)`` of the recordings.
        steps: number of time bins T.
        downsample: sum the counts of ``downsample x downsample`` pixel blocks (the sensor's
            width and height must be multiples of it).
        flatten: merge everything after time into one axis.
    """

    sensor_size: tuple[int, int, int]
    steps: int
    downsample: int = 1
    flatten: bool = False

    def __post_init__(self) -> None:
        w, h = self.sensor_size[0], self.sensor_size[1]
        f = self.downsample
        if f < 1 or (f > 1 and (w % f or h % f)):
            raise ValueError(
                f"EventFrames: downsample must be >= 1 and divide the sensor's width and height "
                f"{(w, h)}, got {f}"
            )

    def __call__(self, events: np.ndarray) -> torch.Tensor:
        from snn.datasets.transforms import to_frame

        frames = to_frame(events, self.sensor_size, n_time_bins=self.steps)
        out = torch.from_numpy(frames.astype(np.float32))
        f = self.downsample
        if f > 1:
            t, p, h, w = out.shape
            out = out.view(t, p, h // f, f, w // f, f).sum((3, 5))
        return out.flatten(1) if self.flatten else out


@dataclass(frozen=True)
class Task:
    """A named training task.

    Attributes:
        description: what it trains on.
        build: ``build(root, steps, seed) -> (train_set, test_set)``, items ``(x [T, ...], y)``.
        model: the reference model in :data:`snn.models.MODELS`.
        steps: default number of time bins.
        model_kwargs: options of the reference model.
        settings: default training options of the recipe (``TrainConfig`` fields).
    """

    description: str
    build: Callable[[str, int, int], tuple[Dataset, Dataset]]
    model: str
    steps: int
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def _digits(root: str, steps: int, seed: int) -> tuple[Dataset, Dataset]:
    """The digits' 8x8 pixels were upsampled to 28x28 for the emulated screen, so frames
    summed over 2x2 blocks (17x17) lose nothing the digits had and cost a quarter."""
    from snn.datasets.digits import DigitsEvents, SaccadeConfig

    frames = EventFrames(SaccadeConfig().sensor_size, steps, downsample=2)
    return (
        DigitsEvents(root or None, train=True, seed=seed, transform=frames),
        DigitsEvents(root or None, train=False, seed=seed, transform=frames),
    )


def _camera(name: str, train_split: str = "train", test_split: str = "test") -> Callable:
    def build(root: str, steps: int, seed: int) -> tuple[Dataset, Dataset]:
        from snn.datasets import get_dataset

        cls = get_dataset(name)
        frames = EventFrames(cls.sensor_size, steps)
        return (
            cls(root, train_split, transform=frames),
            cls(root, test_split, transform=frames),
        )

    return build


def _cifar10dvs(root: str, steps: int, seed: int) -> tuple[Dataset, Dataset]:
    """CIFAR10-DVS has no official split: the first 90% of each class (in file order) train,
    the last 10% test (900/100 per class, as Fang et al. 2021)."""
    from snn.datasets import CIFAR10DVS

    data = CIFAR10DVS(root, "all", transform=EventFrames(CIFAR10DVS.sensor_size, steps))
    train, test = [], []
    for c in np.unique(data.targets):
        idx = np.flatnonzero(data.targets == c)
        cut = round(0.9 * len(idx))
        train += idx[:cut].tolist()
        test += idx[cut:].tolist()
    return Subset(data, train), Subset(data, test)


def _audio(name: str) -> Callable:
    def build(root: str, steps: int, seed: int) -> tuple[Dataset, Dataset]:
        from snn.datasets import get_dataset

        cls = get_dataset(name)
        frames = EventFrames(cls.sensor_size, steps, flatten=True)
        return cls(root, "train", transform=frames), cls(root, "test", transform=frames)

    return build


TASKS: dict[str, Task] = {
    "digits-events": Task(
        "scikit-learn digits seen by an emulated event camera in three saccades "
        "(snn.datasets.digits; generated locally, nothing to download)",
        _digits,
        "plif_nmnist",
        8,
        {"input_size": 17, "channels": 32, "hidden": 256, "dropout": 0.3},
        {"epochs": 10, "batch_size": 32, "lr": 2e-3, "loss": "mse"},
    ),
    "nmnist": Task(
        "N-MNIST (Orchard et al. 2015)",
        _camera("nmnist"),
        "plif_nmnist",
        10,
        settings={"epochs": 100, "batch_size": 16, "lr": 1e-3, "amp": True},
    ),
    "dvs-gesture": Task(
        "DVS128 Gesture (Amir et al. 2017)",
        _camera("dvs_gesture"),
        "plif_dvs_gesture",
        20,
        settings={"epochs": 200, "batch_size": 16, "lr": 1e-3, "amp": True},
    ),
    "cifar10-dvs": Task(
        "CIFAR10-DVS (Li et al. 2017), 9:1 split per class",
        _cifar10dvs,
        "plif_cifar10dvs",
        20,
        settings={"epochs": 200, "batch_size": 16, "lr": 1e-3, "amp": True},
    ),
    "shd": Task(
        "Spiking Heidelberg Digits (Cramer et al. 2020)",
        _audio("shd"),
        "rsnn_shd",
        100,
        settings={"epochs": 100, "batch_size": 64, "lr": 1e-3, "readout": "max"},
    ),
    "ssc": Task(
        "Spiking Speech Commands (Cramer et al. 2020)",
        _audio("ssc"),
        "rsnn_ssc",
        100,
        settings={"epochs": 50, "batch_size": 128, "lr": 1e-3, "readout": "max"},
    ),
}
"""Training tasks by name."""


def build_task_data(name: str, root: str, steps: int = 0, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Train and test sets of task ``name`` from the files under ``root`` (``steps = 0``: the
    task's default number of time bins).

    Raises:
        ValueError: for an unknown task.
    """
    try:
        task = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}") from None
    return task.build(root, steps or task.steps, seed)
