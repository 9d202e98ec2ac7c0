"""AEDAT 2.0 (jAER) files: ``#`` header lines, then big-endian ``int32 address, int32 t``.

Address layouts (iniVation's format documentation; origin at the lower left):

- DVS128: bit 15 external event, bits 14..8 ``y``, bits 7..1 ``x``, bit 0 polarity (1 = ON).
- DAVIS: bit 31 set for APS samples, bit 10 set for IMU / external samples; polarity events
  have both clear, with bits 30..22 ``y``, bits 21..12 ``x``, bit 11 polarity (1 = ON).

Only polarity events become events; other records are counted in the header dict. Timestamps
are microseconds; a backwards jump of more than ``2**31`` us is unwrapped by ``2**32``.
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
    iter_chunks,
    make_events,
    read_file_bytes,
    resolve_sensor_size,
    select_range,
    split_text_header,
)

RECORD = np.dtype([("a", ">u4"), ("t", ">i4")])

#: jAER chip class name fragments -> (layout, sensor size).
CHIPS: dict[str, tuple[str, tuple[int, int, int]]] = {
    "dvs128": ("dvs128", (128, 128, 2)),
    "tmpdiff128": ("dvs128", (128, 128, 2)),
    "davis346": ("davis", (346, 260, 2)),
    "davis240": ("davis", (240, 180, 2)),
    "davis640": ("davis", (640, 480, 2)),
    "davis208": ("davis", (208, 192, 2)),
}

LAYOUTS = ("auto", "dvs128", "davis")


def unwrap_timestamps(t: np.ndarray, bits: int = 32) -> np.ndarray:
    """Undo wrap-around of ``bits``-bit timestamps (jumps back by more than half the range)."""
    t = t.astype(np.int64)
    if t.size < 2:
        return t
    jumps = np.diff(t) < -(1 << (bits - 1))
    if jumps.any():
        t[1:] += np.cumsum(jumps, dtype=np.int64) << bits
    return t


def _chip(header_lines: list[str]) -> tuple[str | None, str | None, tuple[int, int, int] | None]:
    for line in header_lines:
        m = re.match(r"\s*AEChip:\s*(\S+)", line)
        if m:
            name = m.group(1)
            low = name.lower()
            for key, (layout, size) in CHIPS.items():
                if key in low:
                    return name, layout, size
            return name, None, None
    return None, None, None


def read_aedat2(
    path: PathLike,
    *,
    layout: str = "auto",
    sensor_size: Any = None,
    start: int | None = None,
    stop: int | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
) -> Recording:
    """Read an AEDAT 2.0 file.

    Args:
        path: File to read.
        layout: ``"dvs128"``, ``"davis"``, or ``"auto"`` (from the ``# AEChip:`` header line).
        sensor_size: ``(W, H, P)`` overriding the chip's size.
        start: First polarity-event index; ``stop``: one past the last.
        t_start: Keep ``t >= t_start``; ``t_end``: keep ``t < t_end`` (microseconds).

    Records are read in chunks through a fixed buffer and reading stops at ``stop``, so
    memory follows the events returned, not the file size; ``header["other_records"]``
    counts the non-polarity records read.

    Raises:
        EventFormatError: wrong version line, truncated record, unknown chip with
            ``layout="auto"``, or an event outside the sensor.
        ValueError: unknown ``layout``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    check_range_args(start, stop, t_start, t_end)
    buf = read_file_bytes(path)
    lines, offset = split_text_header(buf, b"#", path)
    if not lines or not lines[0].startswith("!AER-DAT2"):
        raise EventFormatError(path, 0, "expected the version line '#!AER-DAT2.0'")
    chip, chip_layout, chip_size = _chip(lines)
    header: dict[str, Any] = {"lines": lines, "chip": chip, "data_offset": offset}
    if layout == "auto":
        if chip_layout is None:
            raise EventFormatError(
                path, 0, f"cannot tell the address layout from AEChip {chip!r}; pass layout="
            )
        layout = chip_layout
    header["layout"] = layout
    n, rest = divmod(buf.size - offset, RECORD.itemsize)
    del buf  # the header's pages only; records are read in chunks below
    if rest:
        raise EventFormatError(path, offset + n * 8, "file ends inside an 8-byte record")
    size = check_sensor_size(sensor_size) if sensor_size is not None else chip_size
    chunks: list[np.ndarray] = []
    k = 0  # index of the next polarity event
    other = 0
    wraps = 0
    last_t: int | None = None
    max_x = max_y = -1
    # One fixed buffer: memory follows the events returned; reading stops at ``stop``.
    for pos, chunk in iter_chunks(path, offset, RECORD.itemsize):
        rec = chunk.view(RECORD)
        raw_t = rec["t"].astype(np.int64)
        jumps = np.diff(raw_t, prepend=raw_t[0] if last_t is None else last_t) < -(1 << 31)
        t = raw_t + ((wraps + np.cumsum(jumps, dtype=np.int64)) << 32)
        wraps += int(jumps.sum())
        last_t = int(raw_t[-1])
        a = rec["a"]
        if layout == "dvs128":
            keep = np.flatnonzero((a & 0x8000) == 0)
            a_k = a[keep]
            x, y, p = (a_k >> 1) & 0x7F, (a_k >> 8) & 0x7F, a_k & 1
        else:
            keep = np.flatnonzero((a & 0x80000400) == 0)
            a_k = a[keep]
            x, y, p = (a_k >> 12) & 0x3FF, (a_k >> 22) & 0x1FF, (a_k >> 11) & 1
        other += rec.size - keep.size
        events = make_events(x, y, t[keep], p)
        lo = 0 if start is None else min(max(start - k, 0), events.size)
        hi = events.size if stop is None else min(max(stop - k, 0), events.size)
        if size is not None:
            check_coordinates(events[:hi], size, path, offsets=pos + keep[:hi] * 8)
        elif hi:
            max_x = max(max_x, int(events["x"][:hi].max()))
            max_y = max(max_y, int(events["y"][:hi].max()))
        k += events.size
        picked = select_range(events[lo:hi], None, None, t_start, t_end)
        if picked.size:
            chunks.append(picked)
        if stop is not None and k >= stop:
            break
    header["other_records"] = int(other)
    events = np.concatenate(chunks) if chunks else make_events([], [], [], [])
    seen = make_events([max_x], [max_y], [0], [0]) if max_x >= 0 else events[:0]
    sensor = resolve_sensor_size(sensor_size, chip_size, seen, header, path)
    return Recording(events, sensor, header)
