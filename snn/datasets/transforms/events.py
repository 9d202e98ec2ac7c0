"""Event-to-event transforms: denoise, spatial/temporal downsampling, crops, time ranges.

All are frozen dataclasses (picklable, hashable, usable as cache keys), take a structured event
array and return a new one without modifying the input. tonic transforms follow the same
calling convention and can be mixed freely in :class:`Compose`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from snn.datasets.transforms import _kernels


def _xy_within(events: np.ndarray, size: tuple[int, int, int], who: str) -> None:
    if events.size == 0:
        return
    if events["x"].min() < 0 or events["x"].max() >= size[0]:
        raise ValueError(f"{who}: x outside 0..{size[0] - 1} of sensor_size {size}")
    if "y" in events.dtype.names and (events["y"].min() < 0 or events["y"].max() >= size[1]):
        raise ValueError(f"{who}: y outside 0..{size[1] - 1} of sensor_size {size}")


@dataclass(frozen=True)
class Compose:
    """Apply callables in order (ours, tonic's, or any ``f(events) -> events``)."""

    transforms: Sequence[Callable[[Any], Any]]

    def __call__(self, events: Any) -> Any:
        for t in self.transforms:
            events = t(events)
        return events


@dataclass(frozen=True)
class Denoise:
    """Drop events with no event at a 4-neighbour pixel in the preceding ``filter_time`` us.

    An event at ``(x, y, t)`` is kept when a neighbour fired at ``t'`` with
    ``t' + filter_time > t`` (earlier events only; the first events of a recording have no
    history). tonic's ``Denoise`` differs for events within ``filter_time`` of the start, which
    it keeps against a history initialised to ``filter_time``.
    """

    sensor_size: tuple[int, int, int]
    filter_time: float = 10000

    def __call__(self, events: np.ndarray) -> np.ndarray:
        if self.filter_time <= 0:
            raise ValueError(f"Denoise.filter_time must be positive, got {self.filter_time}")
        _xy_within(events, self.sensor_size, "Denoise")
        if events.size == 0:
            return events.copy()
        keep = _kernels.denoise_mask(
            events["x"].astype(np.int64),
            events["y"].astype(np.int64),
            events["t"].astype(np.int64),
            int(self.sensor_size[0]),
            int(self.sensor_size[1]),
            int(np.ceil(self.filter_time)),
        )
        return events[keep]


@dataclass(frozen=True)
class Downsample:
    """Scale coordinates down by integer ``spatial_factor`` and time by ``time_factor``.

    ``x // spatial_factor`` (and ``y``); ``t`` becomes ``floor(t * time_factor)``. The new sensor
    size is ``ceil(W / f), ceil(H / f)`` (see :meth:`sensor_size_after`).
    """

    spatial_factor: int = 1
    time_factor: float = 1.0

    def sensor_size_after(self, sensor_size: tuple[int, int, int]) -> tuple[int, int, int]:
        f = self.spatial_factor
        return (-(-sensor_size[0] // f), -(-sensor_size[1] // f), sensor_size[2])

    def __call__(self, events: np.ndarray) -> np.ndarray:
        if int(self.spatial_factor) != self.spatial_factor or self.spatial_factor < 1:
            raise ValueError(f"spatial_factor must be an int >= 1, got {self.spatial_factor}")
        if self.time_factor <= 0:
            raise ValueError(f"time_factor must be positive, got {self.time_factor}")
        out = events.copy()
        f = int(self.spatial_factor)
        out["x"] = events["x"] // f
        if "y" in events.dtype.names:
            out["y"] = events["y"] // f
        if self.time_factor != 1:
            out["t"] = np.floor(events["t"] * self.time_factor)
        return out


@dataclass(frozen=True)
class Crop:
    """Keep events inside the box ``[left, left + width) x [top, top + height)``, shifted to 0."""

    left: int
    top: int
    width: int
    height: int

    def __call__(self, events: np.ndarray) -> np.ndarray:
        if self.width <= 0 or self.height <= 0 or self.left < 0 or self.top < 0:
            raise ValueError(f"Crop box must be non-negative with positive size, got {self}")
        x, y = events["x"], events["y"]
        keep = (x >= self.left) & (x < self.left + self.width)
        keep &= (y >= self.top) & (y < self.top + self.height)
        out = events[keep]
        out["x"] -= self.left
        out["y"] -= self.top
        return out


@dataclass(frozen=True)
class CenterCrop:
    """Crop a ``size = (W, H)`` box from the centre of ``sensor_size``."""

    sensor_size: tuple[int, int, int]
    size: tuple[int, int]

    def __call__(self, events: np.ndarray) -> np.ndarray:
        w, h = self.size
        if w > self.sensor_size[0] or h > self.sensor_size[1]:
            raise ValueError(f"CenterCrop size {self.size} exceeds sensor_size {self.sensor_size}")
        left = (self.sensor_size[0] - w) // 2
        top = (self.sensor_size[1] - h) // 2
        return Crop(left, top, w, h)(events)


@dataclass(frozen=True)
class TimeRange:
    """Keep events with ``t_start <= t < t_end`` (either bound may be ``None``)."""

    t_start: float | None = None
    t_end: float | None = None

    def __call__(self, events: np.ndarray) -> np.ndarray:
        t = events["t"]
        keep = np.ones(t.size, dtype=bool)
        if self.t_start is not None:
            keep &= t >= self.t_start
        if self.t_end is not None:
            keep &= t < self.t_end
        return events[keep]


@dataclass(frozen=True)
class TimeShift:
    """Subtract the first timestamp so the recording starts at ``t = 0``."""

    def __call__(self, events: np.ndarray) -> np.ndarray:
        out = events.copy()
        if out.size:
            out["t"] -= events["t"][0]
        return out
