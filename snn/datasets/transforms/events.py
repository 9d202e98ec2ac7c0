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

    An event at ``(x, y, t)`` is kept when one of its 4 neighbours fired at ``t'`` with
    ``t' + filter_time > t`` (events earlier in the array; the pixel's own events do not count).
    What came before the recording is set by ``history_start``:

    - ``history_start=0`` (the default, tonic's rule): every pixel is taken to have fired at
      ``t = 0``, so every event with ``t < filter_time`` is kept. With these settings the kept
      events equal ``tonic.transforms.Denoise(filter_time)``'s (tonic bounds the pixel grid by
      the events' largest ``x`` and ``y`` instead of ``sensor_size``; the two differ only when
      every event lies on the single pixel ``(0, 0)``).
    - ``history_start=None``: no history; an event needs a real earlier neighbour event, so
      the first events of a recording are dropped.
    - any integer: every pixel is taken to have fired at that time (e.g. the recording's
      first timestamp when it does not start at 0).

    Args:
        sensor_size: ``(W, H, P)``; every ``x < W`` and ``y < H``.
        filter_time: the time window, in the units of ``t`` (> 0).
        history_start: the time every pixel is taken to have last fired before the first
            event, or ``None`` for no history.
    """

    sensor_size: tuple[int, int, int]
    filter_time: float = 10000
    history_start: int | None = 0

    def __call__(self, events: np.ndarray) -> np.ndarray:
        if self.filter_time <= 0:
            raise ValueError(f"Denoise.filter_time must be positive, got {self.filter_time}")
        start = self.history_start
        if start is not None and (isinstance(start, bool) or int(start) != start):
            raise ValueError(
                f"Denoise.history_start must be an integer time or None, got {start!r}"
            )
        _xy_within(events, self.sensor_size, "Denoise")
        if events.size == 0:
            return events.copy()
        never = np.iinfo(np.int64).min // 2
        keep = _kernels.denoise_mask(
            events["x"].astype(np.int64),
            events["y"].astype(np.int64),
            events["t"].astype(np.int64),
            int(self.sensor_size[0]),
            int(self.sensor_size[1]),
            int(np.ceil(self.filter_time)),
            never if start is None else int(start),
        )
        return events[keep]


@dataclass(frozen=True)
class Downsample:
    """Multiply pixel coordinates by ``spatial_factor`` and timestamps by ``time_factor``.

    tonic's convention and arithmetic: ``Downsample(spatial_factor=0.5)`` halves the
    resolution; the new coordinate is ``x * spatial_factor`` stored back into the event
    array's field, so integer fields truncate (``floor`` for the non-negative coordinates),
    and likewise ``t * time_factor``. ``spatial_factor`` may be one factor or ``(fx, fy)``;
    alternatively ``sensor_size`` with ``target_size = (W', H')`` gives the factors
    ``W' / W`` and ``H' / H``. The results equal ``tonic.transforms.Downsample``'s with the
    same arguments. No event is dropped; see :meth:`sensor_size_after` for the new size.

    Args:
        time_factor: multiplies ``t`` (> 0), e.g. ``0.001`` for us to ms.
        spatial_factor: multiplies ``x`` and ``y`` (> 0), or ``(fx, fy)``.
        sensor_size: ``(W, H, P)`` of the input; needed with ``target_size``.
        target_size: ``(W', H')`` wanted; overrides ``spatial_factor``.
    """

    time_factor: float = 1.0
    spatial_factor: float | tuple[float, float] = 1.0
    sensor_size: tuple[int, int, int] | None = None
    target_size: tuple[int, int] | None = None

    def factors(self) -> tuple[float, float]:
        """The ``(fx, fy)`` multipliers of ``x`` and ``y`` after validation."""
        if self.target_size is not None:
            if self.sensor_size is None:
                raise ValueError("Downsample: target_size needs sensor_size (W, H, P) as well")
            fx = self.target_size[0] / self.sensor_size[0]
            fy = self.target_size[1] / self.sensor_size[1]
        elif isinstance(self.spatial_factor, tuple | list):
            if len(self.spatial_factor) != 2:
                raise ValueError(
                    f"Downsample.spatial_factor must be a number or (fx, fy), "
                    f"got {self.spatial_factor!r}"
                )
            fx, fy = (float(f) for f in self.spatial_factor)
        else:
            fx = fy = float(self.spatial_factor)
        if not (fx > 0 and fy > 0):
            raise ValueError(
                f"Downsample: spatial factors multiply coordinates (tonic's convention, e.g. 0.5 "
                f"halves the resolution) and must be positive, got {(fx, fy)}"
            )
        return fx, fy

    def sensor_size_after(self, sensor_size: tuple[int, int, int]) -> tuple[int, int, int]:
        """The sensor size holding every output event: ``floor((W - 1) * fx) + 1`` (and H)."""
        fx, fy = self.factors()
        return (
            int(np.floor((sensor_size[0] - 1) * fx)) + 1,
            int(np.floor((sensor_size[1] - 1) * fy)) + 1,
            sensor_size[2],
        )

    def __call__(self, events: np.ndarray) -> np.ndarray:
        if not self.time_factor > 0:
            raise ValueError(f"Downsample.time_factor must be positive, got {self.time_factor}")
        fx, fy = self.factors()
        out = events.copy()
        out["x"] = events["x"] * fx
        if "y" in events.dtype.names:
            out["y"] = events["y"] * fy
        if self.time_factor != 1:
            out["t"] = events["t"] * self.time_factor
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
