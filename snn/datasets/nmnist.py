"""N-MNIST (Orchard et al., 2015): MNIST digits recorded by an ATIS sensor on saccades.

Official archives ``Train.zip`` and ``Test.zip`` unpack to ``Train/<digit>/<id>.bin`` and
``Test/<digit>/<id>.bin`` (ATIS 40-bit events, 34x34 pixels); the official split is the
archives' (60,000 / 10,000 samples). Target: the digit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from snn.datasets._folders import class_folder_files
from snn.datasets.base import EventDataset, Resource
from snn.datasets.io import read_atis_bin


class NMNIST(EventDataset):
    """N-MNIST; samples ``(events, digit)`` with ``sensor_size`` (34, 34, 2)."""

    name = "nmnist"
    sensor_size = (34, 34, 2)
    classes = tuple(str(d) for d in range(10))
    splits = ("train", "test")
    homepage = "https://www.garrickorchard.com/datasets/n-mnist"
    _md5: ClassVar[dict[str, str]] = {
        "train": "20959b8e626244a1b502305a9e6e2031",
        "test": "69ca8762b2fe404d9b9bad1103e97832",
    }
    # The authors' Mendeley Data record (the same MD5s; published by tonic's NMNIST).
    _mirrors: ClassVar[dict[str, tuple[str, ...]]] = {
        "train": (
            "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"
            "39c25547-014b-4137-a934-9d29fa53c7a0/file_downloaded",
        ),
        "test": (
            "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"
            "05a4d654-7e03-4c15-bdfa-9bb2bcbea494/file_downloaded",
        ),
    }

    @property
    def _folder(self) -> str:
        return self.split.capitalize()

    def resources(self) -> list[Resource]:
        return [
            Resource(
                f"{self._folder}.zip",
                self.homepage,
                self._md5[self.split],
                self._folder,
                self._mirrors[self.split],
            )
        ]

    def _index(self) -> tuple[list[Any], list[int]]:
        return class_folder_files(self.root / self._folder, self.classes, ".bin")

    def _load(self, sample: Path) -> np.ndarray:
        return read_atis_bin(sample, sensor_size=self.sensor_size).events
