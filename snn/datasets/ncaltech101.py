"""N-Caltech101 (Orchard et al., 2015): Caltech101 images recorded by an ATIS sensor.

Official archive ``Caltech101.zip`` unpacks to ``Caltech101/<category>/image_NNNN.bin``
(ATIS 40-bit events; sizes differ per image, so ``sensor_size`` is ``None``). There is no
official train/test split: the single split ``"all"`` holds every sample; class names are the
category folder names in sorted order (including ``BACKGROUND_Google``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snn.datasets._folders import class_folder_files
from snn.datasets.base import EventDataset, Resource
from snn.datasets.io import read_atis_bin


class NCaltech101(EventDataset):
    """N-Caltech101; samples ``(events, category index)``."""

    name = "ncaltech101"
    sensor_size = None
    splits = ("all",)
    homepage = "https://www.garrickorchard.com/datasets/n-caltech101"
    folder = "Caltech101"

    def resources(self) -> list[Resource]:
        return [
            Resource(
                "Caltech101.zip",
                self.homepage,
                "66201824eabb0239c7ab992480b50ba3",
                self.folder,
                # The authors' Mendeley Data record (the same MD5; published by tonic).
                (
                    "https://data.mendeley.com/public-files/datasets/cy6cvx3ryv/files/"
                    "36b5c52a-b49d-4853-addb-a836a8883e49/file_downloaded",
                ),
            )
        ]

    def _index(self) -> tuple[list[Any], list[int]]:
        base = self.root / self.folder
        self.classes = tuple(sorted(p.name for p in base.iterdir() if p.is_dir()))
        return class_folder_files(base, self.classes, ".bin")

    def _load(self, sample: Path) -> np.ndarray:
        return read_atis_bin(sample).events
