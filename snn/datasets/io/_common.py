"""Shared pieces of the event-file readers: dtypes, the error class, results, header helpers.

Every reader returns a :class:`Recording`: a numpy structured array of events with tonic's
field layout (``x, y`` int16, ``t`` int64 microseconds, ``p`` bool; audio files use
``t, x, p`` int64) and the sensor size ``(W, H, P)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from snn.datasets._events import AUDIO_DTYPE as AUDIO_DTYPE  # re-exported
from snn.datasets._events import EVENT_DTYPE

PathLike = str | os.PathLike


class EventFormatError(ValueError):
    """A file is not valid in the format its reader decodes.

    Attributes:
        path: The file that failed to decode.
        offset: Byte offset of the offending data in that file (``None`` when not local).
    """

    def __init__(
        self, path: PathLike, offset: int | None = None, message: str | None = None
    ) -> None:
        if message is None:  # rebuilt from its text alone (e.g. re-raised by a DataLoader)
            self.path, self.offset, self.detail = None, offset, str(path)
            super().__init__(str(path))
            return
        self.path = str(path)
        self.offset = offset
        self.detail = message
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{self.path}{where}: {message}")

    def __reduce__(self):
        if self.path is None:
            return (type(self), (self.detail, self.offset))
        return (type(self), (self.path, self.offset, self.detail))


class Recording(NamedTuple):
    """Decoded events of one file.

    Attributes:
        events: Structured array (:data:`EVENT_DTYPE` or :data:`AUDIO_DTYPE`), file order.
        sensor_size: ``(W, H, P)``; ``(channels, 1, 1)`` for audio.
        header: Format metadata (header lines, where the sensor size came from, ...).
    """

    events: np.ndarray
    sensor_size: tuple[int, int, int]
    header: dict[str, Any]


def make_events(x: Any, y: Any, t: Any, p: Any) -> np.ndarray:
    """Pack field arrays into an :data:`EVENT_DTYPE` structured array."""
    t = np.asarray(t)
    out = np.empty(t.shape[0], dtype=EVENT_DTYPE)
    out["x"] = x
    out["y"] = y
    out["t"] = t
    out["p"] = p
    return out


#: Bytes read at a time by the readers that decode a file in chunks (a fixed buffer).
CHUNK_BYTES = 1 << 22
#: Longest header line accepted: a file of ``%`` or ``#`` with no line ending is refused
#: after this many bytes instead of being read whole.
MAX_HEADER_LINE = 1 << 20


def check_event_file(path: PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path` once it is known to be a regular file.

    Raises:
        FileNotFoundError: nothing exists at ``path``.
        EventFormatError: ``path`` is a directory (or another non-file).
    """
    path = Path(path)
    if path.is_dir():
        raise EventFormatError(
            path, None, "is a directory, not an event file (pass one of the files inside it)"
        )
    if not path.exists():
        raise FileNotFoundError(f"event file not found: {path}")
    if not path.is_file():
        raise EventFormatError(path, None, "is not a regular file")
    return path


def iter_chunks(
    path: PathLike, offset: int, align: int, chunk_bytes: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Read ``path`` from byte ``offset`` in chunks through one fixed buffer.

    Yields ``(file_offset, chunk)`` with ``chunk`` a ``uint8`` view of the buffer holding a
    multiple of ``align`` bytes (valid until the next chunk). Bytes after the last whole
    ``align`` are not yielded; compare ``offset`` plus the bytes yielded with the file size to
    detect them.
    """
    size = max(align, (chunk_bytes or CHUNK_BYTES) // align * align)
    buf = np.empty(size, dtype=np.uint8)
    view = memoryview(buf)
    pos = offset
    keep = 0  # bytes of an incomplete unit carried to the front of the buffer
    with open(path, "rb") as f:
        f.seek(offset)
        while True:
            n = f.readinto(view[keep:])
            total = keep + (n or 0)
            usable = total // align * align
            if usable:
                yield pos, buf[:usable]
                pos += usable
            if not n:
                return
            keep = total - usable
            if keep:
                buf[:keep] = buf[usable:total]


def read_file_bytes(path: PathLike) -> np.ndarray:
    """Return the file's bytes as a read-only ``uint8`` array (memory-mapped when non-empty).

    Only the pages that are read are loaded, so slices of a large file cost their own size.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        EventFormatError: ``path`` is a directory.
    """
    path = check_event_file(path)
    if path.stat().st_size == 0:
        data = np.zeros(0, dtype=np.uint8)
        data.flags.writeable = False
        return data
    return np.asarray(np.memmap(path, dtype=np.uint8, mode="r"))


def split_text_header(buf: np.ndarray, prefix: bytes, path: PathLike) -> tuple[list[str], int]:
    """Split leading text lines that start with ``prefix`` from binary data.

    Args:
        buf: File bytes.
        prefix: Single byte that starts each header line (``b"%"`` or ``b"#"``).
        path: File name, for error messages.

    Returns:
        ``(lines, data_offset)``: decoded header lines (prefix and line ending stripped) and the
        byte offset of the first byte after the header.

    Raises:
        EventFormatError: A header line has no line ending.
    """
    pos = 0
    lines: list[str] = []
    code = prefix[0]
    size = len(buf)
    while pos < size and buf[pos] == code:
        end = -1
        window = 4096
        while end < 0:
            chunk = bytes(buf[pos : pos + window])
            end = chunk.find(b"\n")
            if end >= 0 or pos + window >= size or window >= MAX_HEADER_LINE:
                break
            window = min(window * 4, MAX_HEADER_LINE)
        if end < 0:
            if window >= MAX_HEADER_LINE and pos + window < size:
                raise EventFormatError(
                    path, pos, f"header line has no line ending within {MAX_HEADER_LINE} bytes"
                )
            raise EventFormatError(path, pos, "header line has no line ending")
        lines.append(chunk[1:end].rstrip(b"\r").decode("latin-1").strip())
        pos += end + 1
        if lines[-1].lower() in ("end", "!end-header"):
            break
    return lines, pos


def check_sensor_size(sensor_size: Any, name: str = "sensor_size") -> tuple[int, int, int]:
    """Validate a ``(W, H, P)`` tuple of positive integers."""
    try:
        size = tuple(int(v) for v in sensor_size)
    except TypeError as exc:
        raise TypeError(f"{name} must be a (W, H, P) tuple of ints, got {sensor_size!r}") from exc
    if len(size) != 3 or min(size) <= 0:
        raise ValueError(f"{name} must be three positive ints (W, H, P), got {sensor_size!r}")
    return size  # type: ignore[return-value]


def check_coordinates(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    path: PathLike,
    offsets: np.ndarray | None = None,
    record_offset: tuple[int, int] | None = None,
) -> None:
    """Raise if an event lies outside the sensor.

    Args:
        events: Decoded events.
        sensor_size: ``(W, H, P)``.
        path: File name for the message.
        offsets: Byte offset of each event in the file, if known.
        record_offset: ``(data_start, record_size)`` for fixed-size records.

    Raises:
        EventFormatError: naming the first offending event's byte offset.
    """
    if events.size == 0:
        return
    bad = (events["x"] < 0) | (events["x"] >= sensor_size[0])
    if "y" in events.dtype.names:
        bad |= (events["y"] < 0) | (events["y"] >= sensor_size[1])
    if not bad.any():
        return
    i = int(np.argmax(bad))
    offset = None
    if offsets is not None:
        offset = int(offsets[i])
    elif record_offset is not None:
        offset = record_offset[0] + i * record_offset[1]
    ev = events[i]
    coords = f"x={int(ev['x'])}" + (f", y={int(ev['y'])}" if "y" in events.dtype.names else "")
    raise EventFormatError(
        path, offset, f"event {i} has {coords} outside the sensor of size {sensor_size}"
    )


def infer_sensor_size(events: np.ndarray, path: PathLike | None = None) -> tuple[int, int, int]:
    """Smallest ``(W, H, 2)`` that holds every event.

    Raises:
        EventFormatError: there are no events to tell the size from (naming ``path``).
    """
    if events.size == 0:
        raise EventFormatError(
            path if path is not None else "<events>",
            None,
            "no events and no sensor size in the file's header: pass sensor_size=(W, H, P)",
        )
    return (int(events["x"].max()) + 1, int(events["y"].max()) + 1, 2)


def resolve_sensor_size(
    given: Any,
    from_header: tuple[int, int, int] | None,
    events: np.ndarray,
    header: dict,
    path: PathLike | None = None,
) -> tuple[int, int, int]:
    """Pick the sensor size: argument, then header, then events; record the source.

    Raises:
        EventFormatError: none of the three tells the size (no events).
    """
    if given is not None:
        header["sensor_size_from"] = "argument"
        return check_sensor_size(given)
    if from_header is not None:
        header["sensor_size_from"] = "header"
        return from_header
    header["sensor_size_from"] = "events"
    return infer_sensor_size(events, path)


def check_range_args(
    start: int | None, stop: int | None, t_start: float | None, t_end: float | None
) -> None:
    """Validate the range arguments shared by every reader."""
    for name, value in (("start", start), ("stop", stop)):
        if value is not None and (not isinstance(value, int | np.integer) or value < 0):
            raise ValueError(f"{name} must be a non-negative int or None, got {value!r}")
    if start is not None and stop is not None and stop < start:
        raise ValueError(f"stop ({stop}) must be >= start ({start})")
    if t_start is not None and t_end is not None and t_end < t_start:
        raise ValueError(f"t_end ({t_end}) must be >= t_start ({t_start})")


def select_range(
    events: np.ndarray,
    start: int | None = None,
    stop: int | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
) -> np.ndarray:
    """Events with file index in ``[start, stop)`` and time in ``[t_start, t_end)``."""
    if start is not None or stop is not None:
        events = events[start:stop]
    if t_start is not None or t_end is not None:
        t = events["t"]
        keep = np.ones(t.shape[0], dtype=bool)
        if t_start is not None:
            keep &= t >= t_start
        if t_end is not None:
            keep &= t < t_end
        events = events[keep]
    return events


def time_index_bounds(t: np.ndarray, t_start: float | None, t_end: float | None) -> tuple[int, int]:
    """Index bounds of ``[t_start, t_end)`` in non-decreasing timestamps ``t``."""
    lo = 0 if t_start is None else int(np.searchsorted(t, t_start, side="left"))
    hi = t.shape[0] if t_end is None else int(np.searchsorted(t, t_end, side="left"))
    return lo, max(lo, hi)
