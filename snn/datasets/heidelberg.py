"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) (Cramer et al., 2020).

Official archives ``shd_{train,test}.h5.zip`` and ``ssc_{train,valid,test}.h5.zip`` each hold
one HDF5 file (see :mod:`snn.datasets.io.hdf5_audio`); the split is the files'. Events use
tonic's audio layout (``t, x, p``; 700 channels). Class names come from the file's
``extra/keys`` when present (SHD: English then German digits; SSC: 35 command words).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from snn.datasets.base import EventDataset, Resource
from snn.datasets.io import SpikeAudioFile

_ENGLISH = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_GERMAN = ("null", "eins", "zwei", "drei", "vier", "fuenf", "sechs", "sieben", "acht", "neun")


class _Heidelberg(EventDataset):
    sensor_size = (700, 1, 1)
    homepage = "https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/"
    prefix: ClassVar[str] = ""
    md5: ClassVar[dict[str, str]] = {}

    def resources(self) -> list[Resource]:
        h5 = f"{self.prefix}_{self.split}.h5"
        url = f"https://zenkelab.org/datasets/{h5}.zip"
        return [Resource(f"{h5}.zip", url, self.md5[self.split], h5, (url,))]

    def _index(self) -> tuple[list[Any], list[int]]:
        self.file = SpikeAudioFile(self.root / f"{self.prefix}_{self.split}.h5")
        h5 = self.file.handle()
        if "extra/keys" in h5:
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in h5["extra/keys"][:]]
            self.classes = tuple(keys)
        labels = self.file.labels
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(
                f"{self.file.path}: labels span {labels.min()}..{labels.max()}, "
                f"expected 0..{len(self.classes) - 1}"
            )
        return list(range(len(self.file))), labels.tolist()

    def _load(self, sample: int) -> np.ndarray:
        return self.file.read(sample)[0].events


class SHD(_Heidelberg):
    """Spiking Heidelberg Digits: 20 classes (digits 0-9 in English, then German)."""

    name = "shd"
    prefix = "shd"
    splits = ("train", "test")
    classes = (
        *(f"english-{w}" for w in _ENGLISH),
        *(f"german-{w}" for w in _GERMAN),
    )
    md5: ClassVar[dict[str, str]] = {
        "train": "f3252aeb598ac776c1b526422d90eecb",
        "test": "1503a5064faa34311c398fb0a1ed0a6f",
    }


class SSC(_Heidelberg):
    """Spiking Speech Commands: 35 classes (names from the file's ``extra/keys``)."""

    name = "ssc"
    prefix = "ssc"
    splits = ("train", "valid", "test")
    classes = tuple(f"class-{i}" for i in range(35))
    md5: ClassVar[dict[str, str]] = {
        "train": "d102be95e7144fcc0553d1f45ba94170",
        "valid": "b4eee3516a4a90dd0c71a6ac23a8ae43",
        "test": "a35ff1e9cffdd02a20eb850c17c37748",
    }
