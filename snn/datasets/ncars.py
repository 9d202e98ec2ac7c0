"""N-CARS (Sironi et al., CVPR 2018): 100 ms ATIS clips of cars and background.

Official archives ``n-cars_train.zip`` and ``n-cars_test.zip`` unpack to
``n-cars_<split>/{background,cars}/*.dat`` (Prophesee DAT, CD events); the split is the
archives'. Clip sizes vary, so ``sensor_size`` is ``None``. No MD5 is published for the
archives (extraction warns). Targets: 0 background, 1 car.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snn.datasets._folders import class_folder_files
from snn.datasets.base import EventDataset, Resource
from snn.datasets.io import read_dat


class NCARS(EventDataset):
    """N-CARS; samples ``(events, target)``, target 1 for a car."""

    name = "ncars"
    sensor_size = None
    classes = ("background", "cars")
    splits = ("train", "test")
    homepage = "https://www.prophesee.ai/2018/03/13/dataset-n-cars/"

    def resources(self) -> list[Resource]:
        folder = f"n-cars_{self.split}"
        return [Resource(f"{folder}.zip", self.homepage, None, folder)]

    def _index(self) -> tuple[list[Any], list[int]]:
        return class_folder_files(self.root / f"n-cars_{self.split}", self.classes, ".dat")

    def _load(self, sample: Path) -> np.ndarray:
        return read_dat(sample).events
