"""Where to cut an event stream into windows: by time, by count, into n time or event bins.

The cut points follow tonic's slicers exactly (so frames equal ``tonic.transforms.ToFrame``):

- ``time_window`` (``overlap`` in us): stride ``time_window - overlap``; windows start at the
  first event (or ``start_time``); ``floor((duration - window) / stride) + 1`` windows, or
  ``ceil(...)`` with ``include_incomplete``; at least one.
- ``event_count`` (``overlap`` in events): stride ``event_count - overlap``.
- ``n_time_bins``: bin length ``(t_last - t_first) // n * (1 + overlap)``, stride
  ``length * (1 - overlap)``. As in tonic, events after the last whole bin are not counted.
- ``n_event_bins``: ``N // n * (1 + overlap)`` events per bin, stride ``count * (1 - overlap)``;
  the remainder after the last bin is not counted either.

Each function returns ``(starts, ends)``: int64 index arrays into the (time-sorted) events.
"""

from __future__ import annotations

import numpy as np


def _check_positive(name: str, value) -> None:
    if value is None or value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


def by_time(
    t: np.ndarray,
    time_window: float,
    overlap: float = 0.0,
    include_incomplete: bool = False,
    start_time: float | None = None,
    end_time: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``time_window`` us (see module docstring)."""
    _check_positive("time_window", time_window)
    stride = time_window - overlap
    if stride <= 0:
        raise ValueError(f"overlap ({overlap}) must be smaller than time_window ({time_window})")
    if t.size == 0 and (start_time is None or end_time is None):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    start = t[0] if start_time is None else start_time
    end = t[-1] if end_time is None else end_time
    ratio = (end - start - time_window) / stride
    n = int(np.ceil(ratio) + 1) if include_incomplete else int(np.floor(ratio) + 1)
    n = max(n, 1)
    w_start = np.arange(n) * stride + start
    return (
        np.searchsorted(t, w_start).astype(np.int64),
        np.searchsorted(t, w_start + time_window).astype(np.int64),
    )


def by_count(
    n_events: int, event_count: int, overlap: int = 0, include_incomplete: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``event_count`` events (see module docstring)."""
    _check_positive("event_count", event_count)
    stride = event_count - overlap
    if stride <= 0:
        raise ValueError(f"overlap ({overlap}) must be smaller than event_count ({event_count})")
    count = min(event_count, n_events)
    ratio = (n_events - count) / stride
    n = int(np.ceil(ratio) + 1) if include_incomplete else int(np.floor(ratio) + 1)
    starts = np.arange(n, dtype=np.int64) * stride
    ends = np.minimum(starts + count, n_events)
    return np.minimum(starts, n_events), ends


def by_time_bins(t: np.ndarray, n_bins: int, overlap: float = 0.0) -> tuple[np.ndarray, ...]:
    """``n_bins`` equal time bins (see module docstring)."""
    _check_positive("n_time_bins", n_bins)
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap for n_time_bins must be in [0, 1), got {overlap}")
    if t.size == 0:
        z = np.zeros(n_bins, np.int64)
        return z, z.copy()
    window = (t[-1] - t[0]) // n_bins * (1 + overlap)
    stride = window * (1 - overlap)
    w_start = np.arange(n_bins) * stride + t[0]
    return (
        np.searchsorted(t, w_start).astype(np.int64),
        np.searchsorted(t, w_start + window).astype(np.int64),
    )


def by_event_bins(n_events: int, n_bins: int, overlap: float = 0.0) -> tuple[np.ndarray, ...]:
    """``n_bins`` bins of equal event count (see module docstring)."""
    _check_positive("n_event_bins", n_bins)
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap for n_event_bins must be in [0, 1), got {overlap}")
    count = int(n_events // n_bins * (1 + overlap))
    stride = int(count * (1 - overlap))
    starts = np.arange(n_bins, dtype=np.int64) * stride
    return np.minimum(starts, n_events), np.minimum(starts + count, n_events)


def slice_indices(
    events: np.ndarray,
    time_window: float | None = None,
    event_count: int | None = None,
    n_time_bins: int | None = None,
    n_event_bins: int | None = None,
    overlap: float = 0.0,
    include_incomplete: bool = False,
    start_time: float | None = None,
    end_time: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` for exactly one of the four slicing methods.

    Raises:
        ValueError: not exactly one method given, or invalid sizes/overlap.
    """
    given = [v is not None for v in (time_window, event_count, n_time_bins, n_event_bins)]
    if sum(given) != 1:
        raise ValueError(
            "give exactly one of time_window, event_count, n_time_bins, n_event_bins; "
            f"got time_window={time_window}, event_count={event_count}, "
            f"n_time_bins={n_time_bins}, n_event_bins={n_event_bins}"
        )
    if time_window is not None:
        return by_time(events["t"], time_window, overlap, include_incomplete, start_time, end_time)
    if event_count is not None:
        return by_count(len(events), int(event_count), int(overlap), include_incomplete)
    if n_time_bins is not None:
        return by_time_bins(events["t"], int(n_time_bins), overlap)
    return by_event_bins(len(events), int(n_event_bins), overlap)


def slice_events(events: np.ndarray, **method) -> list[np.ndarray]:
    """Cut ``events`` into a list of views (arguments of :func:`slice_indices`)."""
    starts, ends = slice_indices(events, **method)
    return [events[a:b] for a, b in zip(starts, ends)]
