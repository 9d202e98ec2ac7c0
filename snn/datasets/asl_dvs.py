"""ASL-DVS (Bi et al., ICCV 2019): 24 American Sign Language letters (a-y without j), DAVIS240.

Extracted layout: ``<letter>/<letter>_<n>.mat`` with vectors ``x, y, ts, pol`` (``ts`` in
microseconds). The published archive ``ICCV2019_DVS_dataset.zip`` holds one zip per letter;
zips found after extraction are extracted in turn. No MD5 is published for it (extraction
warns) and there is no official split: the single split ``"all"`` holds every sample.
Coordinates are returned as stored (no flips).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from snn.datasets._folders import class_folder_files
from snn.datasets.archive import safe_extract
from snn.datasets.base import EventDataset, Resource
from snn.datasets.io import read_mat


class ASLDVS(EventDataset):
    """ASL-DVS; samples ``(events, letter index)`` with ``sensor_size`` (240, 180, 2)."""

    name = "asl_dvs"
    sensor_size = (240, 180, 2)
    classes = tuple("abcdefghiklmnopqrstuvwxy")
    splits = ("all",)
    homepage = "https://github.com/PIX2NVS/NVS2Graph"

    def resources(self) -> list[Resource]:
        return [
            Resource(
                "ICCV2019_DVS_dataset.zip",
                "https://www.dropbox.com/sh/ibq0jsicatn7l6r/AACNrNELV56rs1YInMWUs9CAa?dl=0",
                None,
                "y",
                # The same folder as one zip (the link tonic's ASLDVS downloads). No MD5 is
                # listed here, so the download is extracted unverified, with a warning.
                ("https://www.dropbox.com/sh/ibq0jsicatn7l6r/AACNrNELV56rs1YInMWUs9CAa?dl=1",),
            )
        ]

    def _prepare(self, extract: bool) -> None:
        outer = self.root / self.resources()[0].filename
        if extract and not (self.root / "y").exists() and outer.is_file():
            warnings.warn(
                f"{outer}: no MD5 is published for this archive; extracting unverified",
                stacklevel=3,
            )
            # Unpack into a private folder, then each letter zip (or letter folder) into root.
            with tempfile.TemporaryDirectory(prefix=".extract-", dir=self.root) as staging:
                safe_extract(outer, staging)
                inner = sorted(Path(staging).rglob("*.zip"))
                for z in inner:
                    safe_extract(z, self.root)
                if not inner:
                    for d in sorted(Path(staging).rglob("*")):
                        if d.is_dir() and d.name in self.classes:
                            os.replace(d, self.root / d.name)
        super()._prepare(extract=False)

    def _index(self) -> tuple[list[Any], list[int]]:
        return class_folder_files(self.root, self.classes, ".mat")

    def _load(self, sample: Path) -> np.ndarray:
        return read_mat(sample, layout="columns", sensor_size=self.sensor_size).events
