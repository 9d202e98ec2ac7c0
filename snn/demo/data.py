"""The demo's data: scikit-learn's 8x8 handwritten digits (ships with scikit-learn, no
download), split once with a fixed seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["Digits", "load_digits"]


@dataclass
class Digits:
    """Train/test split of the digits as images in ``[0, 1]``, ``[N, 1, 8, 8]``."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor

    def to(self, device: torch.device | str) -> Digits:
        return Digits(
            *(t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test))
        )


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> Digits:
    """Load the 1797 digits, scale pixels (0-16) to ``[0, 1]`` and split them stratified.

    Raises:
        ImportError: with the install command when scikit-learn is missing.
    """
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the demo needs scikit-learn: pip install 'snn[demo]'") from err
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    bunch = sk_digits()
    images = bunch.images.astype(np.float32) / 16.0
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):  # stratified: the same fraction of every class
        idx = rng.permutation(np.flatnonzero(labels == c))
        test[idx[: round(len(idx) * test_fraction)]] = True
    x = torch.from_numpy(images).unsqueeze(1)
    y = torch.from_numpy(labels)
    return Digits(x[~test], y[~test], x[test], y[test])
