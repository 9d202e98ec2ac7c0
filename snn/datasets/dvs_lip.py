"""DVS-Lip (Tan et al., CVPR 2022): 100 spoken English words, lip motion seen by a DAVIS346.

Official archive ``DVS-Lip.zip`` unpacks to ``DVS-Lip/{train,test}/<word>/<n>.npy``, each a
structured array ``t`` (int32, us), ``x, y, p`` (int8) on a 128x128 crop; the split is the
archive's. Class names are the word folders in sorted order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snn.datasets._folders import class_folder_files
from snn.datasets.base import EventDataset, Resource
from snn.datasets.io import read_numpy_events


class DVSLip(EventDataset):
    """DVS-Lip; samples ``(events, word index)`` with ``sensor_size`` (128, 128, 2)."""

    name = "dvs_lip"
    sensor_size = (128, 128, 2)
    splits = ("train", "test")
    homepage = "https://sites.google.com/view/event-based-lipreading"

    def resources(self) -> list[Resource]:
        md5 = "2dcb959255122d4cdeb6094ca282494b"
        return [Resource("DVS-Lip.zip", self.homepage, md5, f"DVS-Lip/{self.split}")]

    def _index(self) -> tuple[list[Any], list[int]]:
        base = self.root / "DVS-Lip" / self.split
        self.classes = tuple(sorted(p.name for p in base.iterdir() if p.is_dir()))
        return class_folder_files(base, self.classes, ".npy")

    def _load(self, sample: Path) -> np.ndarray:
        return read_numpy_events(sample, sensor_size=self.sensor_size).events
