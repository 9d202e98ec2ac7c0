"""ATIS ``.bin`` files of N-MNIST and N-Caltech101 (40-bit events).

Each event is 5 bytes: ``x`` (byte 0), ``y`` (byte 1), polarity (bit 7 of byte 2), and a
23-bit timestamp in microseconds (bits 6..0 of byte 2, then bytes 3 and 4, big-endian).
A record with ``y == 240`` is a timestamp-overflow marker: it adds ``2**13`` us to its own and
every later timestamp and is not an event (the datasets' published reader does the same).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snn.datasets.io._common import (
    EVENT_DTYPE,
    EventFormatError,
    PathLike,
    Recording,
    check_coordinates,
    check_event_file,
    check_range_args,
    check_sensor_size,
    iter_chunks,
    make_events,
    resolve_sensor_size,
    select_range,
)

RECORD_SIZE = 5
OVERFLOW_Y = 240
OVERFLOW_INCREMENT = 1 << 13


def read_atis_bin(
    path: PathLike,
    *,
    sensor_size: Any = None,
    start: int | None = None,
    stop: int | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
) -> Recording:
    """Read an N-MNIST / N-Caltech101 ``.bin`` file.

    Args:
        path: File to read.
        sensor_size: ``(W, H, P)`` to check coordinates against (N-MNIST: ``(34, 34, 2)``);
            otherwise the smallest size holding the events before ``stop`` (all events
            without it).
        start: First event index (overflow markers are not events); ``stop``: one past last.
        t_start: Keep ``t >= t_start``; ``t_end``: keep ``t < t_end`` (microseconds).

    The file is read in chunks through a fixed buffer, and reading stops at ``stop``: memory
    follows the events returned, not the file size.

    Raises:
        EventFormatError: the size is not a multiple of 5 bytes, an event lies outside
            ``sensor_size``, or the file holds no event and no ``sensor_size`` is given.
    """
    check_range_args(start, stop, t_start, t_end)
    path_ = check_event_file(path)
    n, rest = divmod(path_.stat().st_size, RECORD_SIZE)
    if rest:
        raise EventFormatError(path, n * RECORD_SIZE, "file ends inside a 5-byte event")
    size = check_sensor_size(sensor_size) if sensor_size is not None else None
    chunks: list[np.ndarray] = []
    n_overflow = 0  # overflow markers before the current chunk
    k = 0  # index of the next event (markers are not events)
    seen = 0  # events decoded (for the sensor size when none is given)
    max_x = max_y = -1
    # The file is read through one fixed buffer: memory follows the events returned.
    for pos, chunk in iter_chunks(path, 0, RECORD_SIZE):
        rec = chunk.reshape(-1, RECORD_SIZE)
        y = rec[:, 1]
        overflow = y == OVERFLOW_Y
        t = (
            (rec[:, 2].astype(np.int64) & 0x7F) << 16
            | rec[:, 3].astype(np.int64) << 8
            | rec[:, 4].astype(np.int64)
        )
        t += (n_overflow + np.cumsum(overflow, dtype=np.int64)) * OVERFLOW_INCREMENT
        n_overflow += int(overflow.sum())
        keep = np.flatnonzero(~overflow)
        events = make_events(rec[keep, 0], y[keep], t[keep], rec[keep, 2] >> 7)
        lo = 0 if start is None else min(max(start - k, 0), events.size)
        hi = events.size if stop is None else min(max(stop - k, 0), events.size)
        if size is not None:
            check_coordinates(events[:hi], size, path, offsets=pos + keep[:hi] * RECORD_SIZE)
        elif hi:
            max_x = max(max_x, int(events["x"][:hi].max()))
            max_y = max(max_y, int(events["y"][:hi].max()))
        seen += hi
        k += events.size
        picked = select_range(events[lo:hi], None, None, t_start, t_end)
        if picked.size:
            chunks.append(picked)
        if stop is not None and k >= stop:
            break
    header = {"overflow_markers": n_overflow, "records_read": k + n_overflow}
    if sensor_size is not None:
        header["sensor_size_from"] = "argument"
        sensor = size
    elif seen:
        header["sensor_size_from"] = "events"
        sensor = (max_x + 1, max_y + 1, 2)
    else:
        sensor = resolve_sensor_size(None, None, np.empty(0, EVENT_DTYPE), header, path)
    out = np.concatenate(chunks) if chunks else np.empty(0, EVENT_DTYPE)
    return Recording(out, sensor, header)
