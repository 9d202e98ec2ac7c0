"""DVS128 Gesture (Amir et al., CVPR 2017): 11 hand and arm gestures, 29 subjects.

Official archive ``DvsGesture.tar.gz`` unpacks to ``DvsGesture/`` holding one AEDAT 3.1
recording per trial (``userNN_<lighting>.aedat``), its labels (``..._labels.csv``: ``class,
startTime_usec, endTime_usec``, classes 1..11) and the official split lists
``trials_to_train.txt`` (users 1-23) and ``trials_to_test.txt`` (users 24-29). Each labelled
segment is one sample (events with ``start <= t < end``), target ``class - 1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snn.datasets.base import DatasetNotFoundError, EventDataset, Resource
from snn.datasets.io import read_aedat3


class DVSGesture(EventDataset):
    """DVS128 Gesture; samples ``(events, target)`` with ``sensor_size`` (128, 128, 2)."""

    name = "dvs_gesture"
    sensor_size = (128, 128, 2)
    classes = (
        "hand_clapping",
        "right_hand_wave",
        "left_hand_wave",
        "right_arm_clockwise",
        "right_arm_counter_clockwise",
        "left_arm_clockwise",
        "left_arm_counter_clockwise",
        "arm_roll",
        "air_drums",
        "air_guitar",
        "other_gestures",
    )
    splits = ("train", "test")
    homepage = "https://research.ibm.com/interactive/dvsgesture/"
    folder = "DvsGesture"

    def resources(self) -> list[Resource]:
        return [
            Resource(
                "DvsGesture.tar.gz",
                self.homepage,
                "8a5c71fb11e24e5ca5b11866ca6c00a1",
                f"{self.folder}/trials_to_{self.split}.txt",
                # A copy of the same archive published by snnTorch (checked against the MD5).
                ("https://www.dropbox.com/s/cct5kyilhtsliup/DvsGesture.tar.gz?dl=1",),
            )
        ]

    def _index(self) -> tuple[list[Any], list[int]]:
        base = self.root / self.folder
        trials = [
            line.strip()
            for line in (base / f"trials_to_{self.split}.txt").read_text().splitlines()
            if line.strip()
        ]
        samples: list[tuple[Path, int, int]] = []
        targets: list[int] = []
        for trial in trials:
            aedat = base / trial
            labels = base / (Path(trial).stem + "_labels.csv")
            if not aedat.is_file() or not labels.is_file():
                raise DatasetNotFoundError(f"{type(self).__name__}: {aedat} or {labels} missing")
            rows = np.loadtxt(labels, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
            for cls, start, end in rows:
                if not 1 <= cls <= len(self.classes):
                    raise ValueError(f"{labels}: class {cls} outside 1..{len(self.classes)}")
                samples.append((aedat, int(start), int(end)))
                targets.append(int(cls) - 1)
        return samples, targets

    def _load(self, sample: tuple[Path, int, int]) -> np.ndarray:
        path, start, end = sample
        return read_aedat3(path, sensor_size=self.sensor_size, t_start=start, t_end=end).events
