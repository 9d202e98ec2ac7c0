"""AEDAT 3.1 files (cAER / DV): ``#`` header up to ``#!END-HEADER``, then typed packets.

Each packet starts with a 28-byte little-endian header ``int16 eventType, int16 eventSource,
int32 eventSize, int32 eventTSOffset, int32 eventTSOverflow, int32 eventCapacity,
int32 eventNumber, int32 eventValid`` followed by ``eventCapacity * eventSize`` bytes.
Only polarity packets (type 1, 8-byte events ``uint32 data, int32 t``) become events:
``data`` bit 0 is the validity mark (invalid events are not events), bit 1 the polarity,
bits 16..2 ``y`` and bits 31..17 ``x``; ``t = (eventTSOverflow << 31) | t``. Other packet
types (special, frame, IMU, ...) are skipped and counted in the header dict.
"""

from __future__ import annotations

import re
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
    split_text_header,
)

PACKET_HEADER = np.dtype(
    [
        ("type", "<i2"),
        ("source", "<i2"),
        ("size", "<i4"),
        ("ts_offset", "<i4"),
        ("ts_overflow", "<i4"),
        ("capacity", "<i4"),
        ("number", "<i4"),
        ("valid", "<i4"),
    ]
)
POLARITY_EVENT = 1
POLARITY_RECORD = np.dtype([("data", "<u4"), ("t", "<i4")])

#: Source description fragments -> sensor size (checked longest first).
SOURCES: dict[str, tuple[int, int, int]] = {
    "dvs128": (128, 128, 2),
    "davis240": (240, 180, 2),
    "davis346": (346, 260, 2),
    "davis640": (640, 480, 2),
    "dvxplorer": (640, 480, 2),
    "dvs132s": (132, 104, 2),
}


def _source_size(lines: list[str]) -> tuple[int, int, int] | None:
    for line in lines:
        m = re.match(r"Source\s+\d+:\s*(.+)", line)
        if m:
            desc = m.group(1).lower().replace(" ", "")
            for key in sorted(SOURCES, key=len, reverse=True):
                if key in desc:
                    return SOURCES[key]
    return None


def read_aedat3(
    path: PathLike,
    *,
    sensor_size: Any = None,
    source: int | None = None,
    start: int | None = None,
    stop: int | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
) -> Recording:
    """Read the polarity events of an AEDAT 3.1 file.

    Args:
        path: File to read.
        sensor_size: ``(W, H, P)`` overriding the ``#Source`` header line.
        source: Keep only packets from this event source id (default: all).
        start: First event index; ``stop``: one past the last (packets past it are not read).
        t_start: Keep ``t >= t_start``; ``t_end``: keep ``t < t_end`` (microseconds). Packets
            wholly before ``t_start`` (when no index bound is given) or after ``t_end`` are not
            decoded.

    Raises:
        EventFormatError: wrong version line, missing end of header, a packet header with
            impossible sizes, a truncated packet, or an event outside the sensor.
    """
    check_range_args(start, stop, t_start, t_end)
    buf = read_file_bytes(path)
    lines, offset = split_text_header(buf, b"#", path)
    if not lines or not lines[0].startswith("!AER-DAT3"):
        raise EventFormatError(path, 0, "expected the version line '#!AER-DAT3.1'")
    if lines[-1] != "!END-HEADER":
        raise EventFormatError(path, offset, "header has no '#!END-HEADER' line")
    from_header = _source_size(lines)
    size = check_sensor_size(sensor_size) if sensor_size is not None else from_header
    header: dict[str, Any] = {"lines": lines, "data_offset": offset, "skipped_packets": {}}
    chunks: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    n_events = 0
    pos = offset
    # Without index bounds, packets that end before t_start are skipped undecoded.
    seek_time = t_start is not None and start is None and stop is None
    total = buf.size
    while pos < total:
        if pos + PACKET_HEADER.itemsize > total:
            raise EventFormatError(path, pos, "file ends inside a packet header")
        h = np.frombuffer(buf, dtype=PACKET_HEADER, count=1, offset=pos)[0]
        ev_type, ev_size, capacity = int(h["type"]), int(h["size"]), int(h["capacity"])
        number, valid = int(h["number"]), int(h["valid"])
        if ev_size <= 0 or capacity < 0 or not 0 <= valid <= number <= capacity:
            raise EventFormatError(
                path,
                pos,
                f"bad packet header (size={ev_size}, capacity={capacity}, number={number}, "
                f"valid={valid})",
            )
        body = pos + PACKET_HEADER.itemsize
        end = body + capacity * ev_size
        if end > total:
            raise EventFormatError(
                path, pos, f"packet of {end - body} bytes runs past the file end"
            )
        wanted = source is None or int(h["source"]) == source
        if ev_type == POLARITY_EVENT and wanted:
            if ev_size != POLARITY_RECORD.itemsize or int(h["ts_offset"]) != 4:
                raise EventFormatError(
                    path, pos, f"polarity packet with event size {ev_size} (expected 8)"
                )
            if seek_time and number:
                last = np.frombuffer(buf, dtype="<i4", count=1, offset=body + (number - 1) * 8 + 4)
                if (int(h["ts_overflow"]) << 31) | int(last[0]) < t_start:
                    pos = end  # every event of this packet precedes t_start: not decoded
                    continue
            rec = np.frombuffer(buf, dtype=POLARITY_RECORD, count=number, offset=body)
            ok = (rec["data"] & 1) == 1
            d = rec["data"][ok]
            t = (np.int64(int(h["ts_overflow"])) << 31) | rec["t"][ok].astype(np.int64)
            chunks.append(make_events(d >> 17, (d >> 2) & 0x7FFF, t, (d >> 1) & 1))
            offsets.append(body + np.flatnonzero(ok) * POLARITY_RECORD.itemsize)
            n_events += chunks[-1].size
            if t_end is not None and t.size and t[-1] >= t_end:
                break  # packets are written in time order: later ones start after t_end
        else:
            skipped = header["skipped_packets"]
            skipped[ev_type] = skipped.get(ev_type, 0) + 1
        pos = end
        if stop is not None and n_events >= stop:
            break
    events = np.concatenate(chunks) if chunks else make_events([], [], [], [])
    if size is not None and events.size:
        check_coordinates(events, size, path, offsets=np.concatenate(offsets))
    sensor = resolve_sensor_size(sensor_size, from_header, events, header, path)
    return Recording(select_range(events, start, stop, t_start, t_end), sensor, header)
