"""Checkpoints with atomic writes and the random-number-generator states needed to resume a run
exactly where it stopped.

A checkpoint is one file written with :func:`torch.save` to a temporary file in the same folder,
flushed to disk and renamed over the target (:func:`os.replace`), so a crash never leaves a
partial checkpoint behind. Everything in it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snn._files import atomic_open

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "atomic_write_bytes",
    "capture_rng",
    "load_checkpoint",
    "restore_rng",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "snn-train-checkpoint-v1"


class CheckpointError(ValueError):
    """A checkpoint file is not one this module wrote, or does not fit the run."""


def atomic_write_bytes(path: str | os.PathLike, write: Any) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, then rename it to
    ``path``; the temporary file is removed on failure. Returns ``path``."""
    with atomic_open(path) as f:
        write(f)
    return Path(path)


def capture_rng() -> dict[str, Any]:
    """States of Python's, NumPy's and PyTorch's (CPU and CUDA) global generators, as tensors
    and plain values."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (state dicts, counters, RNG states) atomically to ``path``."""
    data = {"format": CHECKPOINT_FORMAT, **payload}
    return atomic_write_bytes(path, lambda f: torch.save(data, f))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: if the file is not such a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise CheckpointError(f"{path}: not a readable checkpoint ({err})") from err
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a training checkpoint of format {CHECKPOINT_FORMAT}")
    return data
