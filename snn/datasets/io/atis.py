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
    EventFormatError,
    PathLike,
    Recording,
    check_coordinates,
    check_range_args,
    check_sensor_size,
    make_events,
    read_file_bytes,
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
            otherwise the smallest size holding the events.
        start: First event index (overflow markers are not events); ``stop``: one past last.
        t_start: Keep ``t >= t_start``; ``t_end``: keep ``t < t_end`` (microseconds).

    Raises:
        EventFormatError: the size is not a multiple of 5 bytes, or an event lies outside
            ``sensor_size``.
    """
    check_range_args(start, stop, t_start, t_end)
    buf = read_file_bytes(path)
    n, rest = divmod(buf.size, RECORD_SIZE)
    if rest:
        raise EventFormatError(path, n * RECORD_SIZE, "file ends inside a 5-byte event")
    rec = buf[: n * RECORD_SIZE].reshape(n, RECORD_SIZE)
    y = rec[:, 1]
    overflow = y == OVERFLOW_Y
    t = (
        (rec[:, 2].astype(np.int64) & 0x7F) << 16
        | rec[:, 3].astype(np.int64) << 8
        | rec[:, 4].astype(np.int64)
    )
    if overflow.any():
        t += np.cumsum(overflow, dtype=np.int64) * OVERFLOW_INCREMENT
    keep = ~overflow
    offsets = np.flatnonzero(keep) * RECORD_SIZE
    events = make_events(rec[keep, 0], y[keep], t[keep], rec[keep, 2] >> 7)
    header = {"overflow_markers": int(overflow.sum())}
    if sensor_size is not None:
        check_coordinates(events, check_sensor_size(sensor_size), path, offsets=offsets)
    sensor = resolve_sensor_size(sensor_size, None, events, header, path)
    return Recording(select_range(events, start, stop, t_start, t_end), sensor, header)
