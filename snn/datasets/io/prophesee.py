"""Prophesee recordings: RAW files in EVT 2.0 / EVT 3.0 and ``.dat`` CD files.

RAW files start with ``%``-prefixed ASCII header lines (ending at ``% end`` or at the first
line without ``%``), followed by little-endian words: 32-bit in EVT 2.0, 16-bit in EVT 3.0.
EVT 2.0 word: type in bits 31..28 (0 CD OFF, 1 CD ON, 8 TIME_HIGH, 0xA trigger, 0xE other,
0xF continued); CD words hold ``t_low`` (27..22), ``x`` (21..11), ``y`` (10..0); TIME_HIGH
holds bits 33..6 of the time. EVT 3.0 is a stateful 16-bit stream (see
:func:`snn.datasets.io._kernels.decode_evt3`).

``.dat`` files: ``%`` header, then one byte event type and one byte event size, then records
``uint32 t, uint32 data`` with ``x`` = bits 13..0, ``y`` = bits 27..14, ``p`` = bits 31..28.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from snn.datasets.io import _kernels
from snn.datasets.io._common import (
    EVENT_DTYPE,
    EventFormatError,
    PathLike,
    Recording,
    check_range_args,
    check_sensor_size,
    iter_chunks,
    read_file_bytes,
    resolve_sensor_size,
    split_text_header,
    time_index_bounds,
)

_INT64_MAX = np.iinfo(np.int64).max

#: Sensor sizes of Prophesee camera plugins, used when the header has no geometry line.
PLUGIN_SENSOR_SIZES: dict[str, tuple[int, int, int]] = {
    "gen41": (1280, 720, 2),
    "imx636": (1280, 720, 2),
    "gen4": (1280, 720, 2),
    "gen31": (640, 480, 2),
    "gen3": (640, 480, 2),
    "genx320": (320, 320, 2),
    "imx8": (640, 512, 2),
}


def parse_prophesee_header(lines: list[str]) -> dict[str, Any]:
    """Turn ``%`` header lines into a dict (``key value`` pairs, plus ``sensor_size``)."""
    header: dict[str, Any] = {"lines": lines}
    for line in lines:
        key, _, value = line.partition(" ")
        if key:
            header[key.lower()] = value.strip()
    size = None
    geometry = header.get("geometry", "")
    m = re.fullmatch(r"(\d+)x(\d+)", geometry)
    if m:
        size = (int(m.group(1)), int(m.group(2)), 2)
    fmt = header.get("format", "")
    w = re.search(r"width=(\d+)", fmt)
    h = re.search(r"height=(\d+)", fmt)
    if size is None and w and h:
        size = (int(w.group(1)), int(h.group(1)), 2)
    if size is None and header.get("width", "").isdigit() and header.get("height", "").isdigit():
        size = (int(header["width"]), int(header["height"]), 2)
    if size is None and "plugin_name" in header:
        plugin = header["plugin_name"].lower()
        for key in sorted(PLUGIN_SENSOR_SIZES, key=len, reverse=True):
            if key in plugin:
                size = PLUGIN_SENSOR_SIZES[key]
                header["sensor_size_plugin"] = key
                break
    header["sensor_size"] = size
    return header


def _raw_encoding(header: dict[str, Any]) -> str | None:
    if "evt" in header:
        version = header["evt"].strip()
        return {"2.0": "evt2", "2.1": "evt21", "3.0": "evt3"}.get(version, "evt" + version)
    fmt = header.get("format", "").lower()
    for name in ("evt21", "evt2", "evt3"):
        if fmt.startswith(name):
            return name
    return None


def _limits(start, stop, t_start, t_end) -> tuple[int, int, int, int]:
    return (
        0 if start is None else int(start),
        _INT64_MAX if stop is None else int(stop),
        -_INT64_MAX if t_start is None else int(np.ceil(t_start)),
        _INT64_MAX if t_end is None else int(np.ceil(t_end)),
    )


def _read_raw(
    path: PathLike,
    encoding: str,
    sensor_size: Any,
    start: int | None,
    stop: int | None,
    t_start: float | None,
    t_end: float | None,
) -> Recording:
    check_range_args(start, stop, t_start, t_end)
    buf = read_file_bytes(path)
    lines, offset = split_text_header(buf, b"%", path)
    header = parse_prophesee_header(lines)
    declared = _raw_encoding(header)
    if declared is not None and declared != encoding:
        raise EventFormatError(
            path, 0, f"header declares encoding {declared!r}, expected {encoding!r}"
        )
    header["encoding"] = encoding
    size = check_sensor_size(sensor_size) if sensor_size is not None else header["sensor_size"]
    word = 4 if encoding == "evt2" else 2
    n_words, rest = divmod(buf.size - offset, word)
    del buf  # the header's pages only; the data is read in chunks below
    if rest:
        raise EventFormatError(
            path, offset + n_words * word, f"file ends inside a {word * 8}-bit word (truncated)"
        )
    width, height = (size[0], size[1]) if size is not None else (2048, 2048)
    limits = _limits(start, stop, t_start, t_end)
    whole = start is None and stop is None and t_start is None and t_end is None
    dtype = "<u4" if word == 4 else "<u2"
    fields = _kernels.EVT2_STATE if encoding == "evt2" else _kernels.EVT3_STATE
    state = _kernels.new_state(fields)
    out = np.empty(0, dtype=EVENT_DTYPE)
    n_out = 0
    status = _kernels.OK
    # The file is read through one fixed buffer and decoded straight into an output array that
    # grows with the events (doubling), so memory follows the events returned, not the file
    # size (a 2 GB file of zeros holds no event and costs one buffer).
    for pos, chunk in iter_chunks(path, offset, word):
        words = chunk.view(dtype)
        need = words.size if encoding == "evt2" else int(_kernels.count_evt3(words))
        if out.size - n_out < need:
            grown = np.empty(max(2 * out.size, n_out + need), dtype=EVENT_DTYPE)
            grown[:n_out] = out[:n_out]
            out = grown
        dest = out[n_out:]
        if encoding == "evt2" and whole:
            n, status, index = _kernels.decode_evt2_all(words, dest, state, width, height)
        elif encoding == "evt2":
            n, status, index = _kernels.decode_evt2(words, dest, state, *limits, width, height)
        else:
            n, status, index = _kernels.decode_evt3(words, dest, state, *limits, width, height)
        n_out += n
        if status == _kernels.OUT_OF_RANGE:
            raise EventFormatError(
                path, pos + index * word, f"event coordinate outside the sensor of size {size}"
            )
        if status == _kernels.BAD_TYPE:
            kind = int(words[index]) >> (28 if word == 4 else 12)
            raise EventFormatError(
                path, pos + index * word, f"reserved {encoding} word type {kind:#x}"
            )
        if status == _kernels.DONE:
            break
    events = out[:n_out] if n_out > out.size // 2 else out[:n_out].copy()
    skipped = state[fields.index("skipped")]
    header["events_without_time_base"] = int(skipped)
    header["data_offset"] = offset
    sensor = resolve_sensor_size(sensor_size, header["sensor_size"], events, header, path)
    return Recording(events, sensor, header)


def read_evt2(
    path: PathLike,
    *,
    sensor_size: Any = None,
    start: int | None = None,
    stop: int | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
) -> Recording:
    """Read a Prophesee EVT 2.0 ``.raw`` file.

    Args:
        path: File to read.
        sensor_size: ``(W, H, P)`` overriding the header (geometry/format/plugin lines).
        start: First event index to return (file order).
        stop: One past the last event index; decoding stops there.
        t_start: Keep events with ``t >= t_start`` (microseconds).
        t_end: Keep events with ``t < t_end``; decoding stops at the first TIME_HIGH past it.

    Returns:
        The decoded :class:`Recording`.

    Raises:
        EventFormatError: truncated word, reserved word type, coordinate outside the sensor,
            or a header declaring another encoding.
    """
    return _read_raw(path, "evt2", sensor_size, start, stop, t_start, t_end)


def read_evt3(
    path: PathLike,
    *,
    sensor_size: Any = None,
    start: int | None = None,
    stop: int | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
) -> Recording:
    """Read a Prophesee EVT 3.0 ``.raw`` file (little-endian 16-bit words).

    Vector words (VECT_12, VECT_8) expand to one event per set bit from the current base x.
    Arguments and errors are those of :func:`read_evt2`.
    """
    return _read_raw(path, "evt3", sensor_size, start, stop, t_start, t_end)


_DAT_CD_TYPES = (0x00, 0x0C)


def read_dat(
    path: PathLike,
    *,
    sensor_size: Any = None,
    start: int | None = None,
    stop: int | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
) -> Recording:
    """Read a Prophesee ``.dat`` file of CD events (event type 0 or 12, 8-byte records).

    Index ranges seek straight to the records; time ranges binary-search the timestamps
    (which the format stores in non-decreasing order), so neither decodes the whole file.

    Args:
        path: File to read.
        sensor_size: ``(W, H, P)``; otherwise ``% Width`` / ``% Height`` header lines, otherwise
            the smallest size holding the events (``header["sensor_size_from"] == "events"``).
        start: First event index; ``stop``: one past the last.
        t_start: Keep ``t >= t_start``; ``t_end``: keep ``t < t_end`` (microseconds).

    Raises:
        EventFormatError: unknown event type, record size below 8, truncated record,
            polarity above 1, or coordinates outside a known sensor size.
    """
    check_range_args(start, stop, t_start, t_end)
    buf = read_file_bytes(path)
    lines, offset = split_text_header(buf, b"%", path)
    header = parse_prophesee_header(lines)
    if buf.size < offset + 2:
        raise EventFormatError(path, offset, "missing event type and size bytes after header")
    ev_type, ev_size = int(buf[offset]), int(buf[offset + 1])
    header.update(event_type=ev_type, event_size=ev_size)
    if ev_type not in _DAT_CD_TYPES:
        raise EventFormatError(path, offset, f"event type {ev_type} is not a CD event type (0, 12)")
    if ev_size < 8:
        raise EventFormatError(path, offset + 1, f"event size {ev_size} < 8 bytes")
    data = offset + 2
    n_records, rest = divmod(buf.size - data, ev_size)
    if rest:
        raise EventFormatError(path, data + n_records * ev_size, "file ends inside a record")
    rec = np.dtype({"names": ["t", "d"], "formats": ["<u4", "<u4"], "itemsize": ev_size})
    records = np.frombuffer(buf, dtype=rec, count=n_records, offset=data)
    lo = 0 if start is None else min(int(start), n_records)
    hi = n_records if stop is None else min(int(stop), n_records)
    hi = max(lo, hi)
    if t_start is not None or t_end is not None:
        a, b = time_index_bounds(records["t"][lo:hi], t_start, t_end)
        lo, hi = lo + a, lo + b
    sel = records[lo:hi]
    header["data_offset"] = data
    size = check_sensor_size(sensor_size) if sensor_size is not None else header["sensor_size"]
    width, height = (size[0], size[1]) if size is not None else (1 << 14, 1 << 14)
    events = np.empty(sel.size, dtype=EVENT_DTYPE)
    status, i = _kernels.decode_dat(sel["t"], sel["d"], events, width, height)
    if status == 2:
        p = int(sel["d"][i]) >> 28
        raise EventFormatError(path, data + (lo + i) * ev_size, f"polarity {p} is not 0 or 1")
    if status == _kernels.OUT_OF_RANGE:
        d = int(sel["d"][i])
        raise EventFormatError(
            path,
            data + (lo + i) * ev_size,
            f"event {lo + i} has x={d & 0x3FFF}, y={(d >> 14) & 0x3FFF} outside the sensor "
            f"of size {size}",
        )
    sensor = resolve_sensor_size(sensor_size, header["sensor_size"], events, header, path)
    return Recording(events, sensor, header)
