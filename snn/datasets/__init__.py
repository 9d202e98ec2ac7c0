"""Event-camera and spiking-audio datasets, file readers, transforms and caching.

- :mod:`snn.datasets.io`: readers of raw event files (EVT 2.0/3.0, DAT, AEDAT 2/3.1/4, ATIS
  ``.bin``, MATLAB, SHD/SSC HDF5) returning tonic-layout structured arrays;
- :mod:`snn.datasets.transforms`: frames, voxel grids, denoise, crops, slicing;
- dataset classes reading official archives from a local folder, fetched with
  ``download=True`` where the archive has a direct link (``DATASETS`` registry);
- :class:`CachedDataset` and :func:`pad_collate` for training loops.

Submodules import lazily so ``import snn`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ASLDVS": "snn.datasets.asl_dvs",
    "CIFAR10DVS": "snn.datasets.cifar10dvs",
    "DVSGesture": "snn.datasets.dvs_gesture",
    "DVSLip": "snn.datasets.dvs_lip",
    "NCARS": "snn.datasets.ncars",
    "NCaltech101": "snn.datasets.ncaltech101",
    "NMNIST": "snn.datasets.nmnist",
    "SHD": "snn.datasets.heidelberg",
    "SSC": "snn.datasets.heidelberg",
    "EventDataset": "snn.datasets.base",
    "EventEmulator": "snn.datasets.emulator",
    "DigitsEvents": "snn.datasets.digits",
    "SaccadeConfig": "snn.datasets.digits",
    "DatasetNotFoundError": "snn.datasets.base",
    "Resource": "snn.datasets.base",
    "ChecksumError": "snn.datasets.archive",
    "UnsafeArchiveError": "snn.datasets.archive",
    "DownloadError": "snn.datasets.download",
    "download_file": "snn.datasets.download",
    "CachedDataset": "snn.datasets.cache",
    "transform_key": "snn.datasets.cache",
    "PadCollate": "snn.datasets.collate",
    "pad_collate": "snn.datasets.collate",
    "pad_sequences": "snn.datasets.collate",
    "EventFormatError": "snn.datasets.io",
    "read_events": "snn.datasets.io",
}

#: Registry key -> dataset class name (resolved lazily by :func:`get_dataset`).
DATASETS = {
    "dvs_gesture": "DVSGesture",
    "dvs_lip": "DVSLip",
    "nmnist": "NMNIST",
    "ncaltech101": "NCaltech101",
    "cifar10_dvs": "CIFAR10DVS",
    "asl_dvs": "ASLDVS",
    "ncars": "NCARS",
    "shd": "SHD",
    "ssc": "SSC",
}


def get_dataset(name: str) -> type:
    """Dataset class registered under ``name``."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    return __getattr__(DATASETS[name])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'snn.datasets' has no attribute {name!r}")


__all__ = ["DATASETS", "get_dataset", *sorted(_EXPORTS)]
