"""The demo's data: scikit-learn's 8x8 handwritten digits (ships with scikit-learn, no
download), split once with a fixed seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from snn.datasets.digits import load_digit_images, stratified_split

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
    images, labels = load_digit_images()
    test = stratified_split(labels, test_fraction, np.random.default_rng(seed))
    x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(labels)
    return Digits(x[~test], y[~test], x[test], y[test])
