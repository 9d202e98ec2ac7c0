"""CIFAR10-DVS (Li et al., 2017): CIFAR-10 images recorded by a DVS128 on a moving display.

Official archives: one zip per class (``airplane.zip`` ... ``truck.zip``), each unpacking to
``<class>/cifar10_<class>_<n>.aedat`` (AEDAT 2.0 with the DAVIS address layout, 128x128).
There is no official train/test split: the single split ``"all"`` holds all 10,000 samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snn.datasets._folders import class_folder_files
from snn.datasets.base import EventDataset, Resource
from snn.datasets.io import read_aedat2

_MD5 = {
    "airplane": "0afd5c4bf9ae06af762a77b180354fdd",
    "automobile": "8438dfeba3bc970c94962d995b1b9bdd",
    "bird": "a9c207c91c55b9dc2002dc21c684d785",
    "cat": "52c63c677c2b15fa5146a8daf4d56687",
    "deer": "b6bf21f6c04d21ba4e23fc3e36c8a4a3",
    "dog": "f379ebdf6703d16e0a690782e62639c3",
    "frog": "cad6ed91214b1c7388a5f6ee56d08803",
    "horse": "e7cbbf77bec584ffbf913f00e682782a",
    "ship": "41c7bd7d6b251be82557c6cce9a7d5c9",
    "truck": "89f3922fd147d9aeff89e76a2b0b70a7",
}
_URL = {
    "airplane": 7712788,
    "automobile": 7712791,
    "bird": 7712794,
    "cat": 7712812,
    "deer": 7712815,
    "dog": 7712818,
    "frog": 7712842,
    "horse": 7712851,
    "ship": 7712836,
    "truck": 7712839,
}


class CIFAR10DVS(EventDataset):
    """CIFAR10-DVS; samples ``(events, class index)`` with ``sensor_size`` (128, 128, 2)."""

    name = "cifar10_dvs"
    sensor_size = (128, 128, 2)
    classes = tuple(_MD5)
    splits = ("all",)
    homepage = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671"

    def resources(self) -> list[Resource]:
        return [
            Resource(f"{c}.zip", url, _MD5[c], c, (url,))
            for c in self.classes
            for url in [f"https://ndownloader.figshare.com/files/{_URL[c]}"]
        ]

    def _index(self) -> tuple[list[Any], list[int]]:
        return class_folder_files(self.root, self.classes, ".aedat")

    def _load(self, sample: Path) -> np.ndarray:
        return read_aedat2(sample, layout="davis", sensor_size=self.sensor_size).events
