"""Transforms of event streams: frames, voxel grids, denoising, downsampling, crops, slicing.

Transforms are frozen dataclasses called on a structured event array (tonic's calling
convention), so tonic transforms and ours mix in :class:`Compose`, and their fields key the
disk cache (:mod:`snn.datasets.cache`).
"""

from snn.datasets.transforms.events import (
    CenterCrop,
    Compose,
    Crop,
    Denoise,
    Downsample,
    TimeRange,
    TimeShift,
)
from snn.datasets.transforms.frames import ToFrame, ToVoxelGrid, to_frame, to_voxel_grid
from snn.datasets.transforms.slicing import slice_events, slice_indices

__all__ = [
    "CenterCrop",
    "Compose",
    "Crop",
    "Denoise",
    "Downsample",
    "TimeRange",
    "TimeShift",
    "ToFrame",
    "ToVoxelGrid",
    "slice_events",
    "slice_indices",
    "to_frame",
    "to_voxel_grid",
]
