"""Dense representations of event streams: frames (event counts) and voxel grids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from snn.datasets.transforms import _kernels
from snn.datasets.transforms.slicing import slice_indices


def _sensor_size(events: np.ndarray, sensor_size: Any) -> tuple[int, int, int]:
    names = events.dtype.names
    if sensor_size is None:
        if events.size == 0:
            raise ValueError("sensor_size is required for an empty event array")
        w = int(events["x"].max()) + 1
        h = int(events["y"].max()) + 1 if "y" in names else 1
        return (w, h, int(np.unique(events["p"]).size))
    size = tuple(int(v) for v in sensor_size)
    if len(size) != 3 or min(size) <= 0:
        raise ValueError(f"sensor_size must be three positive ints (W, H, P), got {sensor_size!r}")
    return size  # type: ignore[return-value]


def _indices(
    events: np.ndarray, size: tuple[int, int, int], check: bool = True
) -> tuple[np.ndarray, ...]:
    """``x, y, p`` index arrays (``y`` zeros for 1-D audio events, ``p`` as integers)."""
    names = events.dtype.names or ()
    for field in ("x", "t", "p"):
        if field not in names:
            raise ValueError(f"events need fields x, (y,) t, p; missing {field!r} in {names}")
    x = events["x"]
    y = events["y"] if "y" in names else np.zeros(events.size, np.int64)
    p = events["p"]
    if size[2] == 1:
        if events.size and np.unique(p).size > 1:
            raise ValueError("sensor_size has one polarity, but events contain two")
        p = np.zeros(events.size, np.int8)
    elif p.dtype == np.bool_:
        p = p.view(np.uint8)  # same bytes, integer type (no copy)
    elif p.dtype.kind not in "iu":
        raise ValueError(f"polarity field 'p' must be bool or integer, got {p.dtype}")
    if check and events.size:
        for name, v, hi in (("x", x, size[0]), ("y", y, size[1]), ("p", p, size[2])):
            lo_v, hi_v = int(v.min()), int(v.max())
            if lo_v < 0 or hi_v >= hi:
                raise ValueError(
                    f"event field {name!r} spans {lo_v}..{hi_v}, outside 0..{hi - 1} "
                    f"of sensor_size {size}"
                )
    return x, y, p


def _outside(events: np.ndarray, j: int, size: tuple[int, int, int]) -> ValueError:
    fields = ", ".join(f"{k}={events[k][j]}" for k in events.dtype.names if k != "t")
    return ValueError(f"event {j} ({fields}) lies outside sensor_size {size} (W, H, P)")


def to_frame(
    events: np.ndarray,
    sensor_size: Any = None,
    time_window: float | None = None,
    event_count: int | None = None,
    n_time_bins: int | None = None,
    n_event_bins: int | None = None,
    overlap: float = 0.0,
    include_incomplete: bool = False,
    start_time: float | None = None,
    end_time: float | None = None,
    dtype: Any = np.int16,
) -> np.ndarray:
    """Count events per pixel and polarity in windows.

    Same parameters and output as ``tonic.transforms.ToFrame`` (windows: see
    :mod:`snn.datasets.transforms.slicing`), computed in one compiled pass.

    Args:
        events: Time-sorted structured events with ``x, (y,) t, p``.
        sensor_size: ``(W, H, P)``; inferred from the events when ``None``.
        time_window: Window length in us (``overlap`` in us).
        event_count: Events per window (``overlap`` in events).
        n_time_bins: Number of equal time bins (``overlap`` a fraction of a bin).
        n_event_bins: Number of equal-count bins (``overlap`` a fraction of a bin).
        overlap: See above.
        include_incomplete: Keep a last, shorter window (time_window / event_count).
        start_time: Start of the first window (time_window only).
        end_time: End of the windowed span (time_window only).
        dtype: Integer frame dtype (tonic uses int16).

    Returns:
        ``[T, P, H, W]`` counts (``[T, P, W]`` for events without ``y``).

    Raises:
        ValueError: bad slicing arguments, coordinates or polarity outside ``sensor_size``,
            or a count too large for ``dtype``.
    """
    size = _sensor_size(events, sensor_size)
    x, y, p = _indices(events, size, check=False)  # the compiled loop checks bounds
    starts, ends = slice_indices(
        events,
        time_window=time_window,
        event_count=event_count,
        n_time_bins=n_time_bins,
        n_event_bins=n_event_bins,
        overlap=overlap,
        include_incomplete=include_incomplete,
        start_time=start_time,
        end_time=end_time,
    )
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        raise TypeError(f"dtype must be an integer dtype, got {dtype}")
    frames = np.zeros((starts.size, size[2], size[1], size[0]), dtype=dtype)
    status, j = _kernels.accumulate_frames(x, y, p, starts, ends, frames, np.iinfo(dtype).max)
    if status == 2:
        raise _outside(events, j, size)
    if status == 1:
        raise ValueError(f"a pixel count exceeds the range of {dtype}; pass a wider dtype")
    if "y" not in events.dtype.names:
        frames = frames[:, :, 0, :]
    return frames


@dataclass(frozen=True)
class ToFrame:
    """Transform form of :func:`to_frame` (drop-in for ``tonic.transforms.ToFrame``)."""

    sensor_size: tuple[int, int, int] | None = None
    time_window: float | None = None
    event_count: int | None = None
    n_time_bins: int | None = None
    n_event_bins: int | None = None
    overlap: float = 0.0
    include_incomplete: bool = False
    start_time: float | None = None
    end_time: float | None = None

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return to_frame(
            events,
            self.sensor_size,
            self.time_window,
            self.event_count,
            self.n_time_bins,
            self.n_event_bins,
            self.overlap,
            self.include_incomplete,
            self.start_time,
            self.end_time,
        )


def to_voxel_grid(events: np.ndarray, sensor_size: Any, n_time_bins: int) -> np.ndarray:
    """Voxel grid with bilinear interpolation in time (Zhu et al., 2019).

    Time is scaled to ``[0, n_time_bins]`` over the recording; each event adds ``+1`` (ON) or
    ``-1`` (OFF) split between its two nearest bins. Matches ``tonic.transforms.ToVoxelGrid``
    (without modifying the input).

    Returns:
        ``[n_time_bins, 1, H, W]`` float64.
    """
    if n_time_bins <= 0:
        raise ValueError(f"n_time_bins must be positive, got {n_time_bins}")
    size = _sensor_size(events, sensor_size)
    if size[2] != 2:
        raise ValueError(f"a voxel grid needs two polarities, sensor_size is {size}")
    x, y, p = _indices(events, size)
    grid = np.zeros((n_time_bins, 1, size[1], size[0]), dtype=np.float64)
    if events.size == 0:
        return grid
    t = events["t"].astype(np.float64)
    span = t[-1] - t[0]
    if span <= 0:
        raise ValueError("a voxel grid needs events spanning a positive time range")
    tn = n_time_bins * (t - t[0]) / span
    sign = np.where(p.astype(bool), 1.0, -1.0)
    _kernels.accumulate_voxels(x, y, sign, tn, grid)
    return grid


@dataclass(frozen=True)
class ToVoxelGrid:
    """Transform form of :func:`to_voxel_grid`."""

    sensor_size: tuple[int, int, int]
    n_time_bins: int

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return to_voxel_grid(events, self.sensor_size, self.n_time_bins)
