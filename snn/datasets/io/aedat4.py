"""AEDAT 4.0 files (DV): ``#!AER-DAT4.0\\r\\n``, an ``IOHE`` FlatBuffer header, then packets.

Header: ``int32 size`` and an ``IOHeader`` FlatBuffer ``{compression: int32 enum,
dataTablePosition: int64 = -1, infoNode: string}``; ``infoNode`` is XML naming the output
streams (``outInfo/<id>`` with ``typeIdentifier`` and ``info/sizeX``, ``sizeY``).
Packets: ``int32 stream_id, int32 size`` and ``size`` bytes, compressed as the header says
(0 none, 1/2 LZ4 frame, 3/4 Zstd frame). An event packet is an ``EVTS`` FlatBuffer whose
field 0 is a vector of 16-byte structs ``{int64 t, int16 x, int16 y, bool on}``.
Packets end at ``dataTablePosition`` (the file's index table) or at the end of the file.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np

from snn.datasets.io import _flatbuffers as fb
from snn.datasets.io._common import (
    EventFormatError,
    PathLike,
    Recording,
    check_range_args,
    check_sensor_size,
    make_events,
    read_file_bytes,
    resolve_sensor_size,
    select_range,
)

MAGIC = b"#!AER-DAT4.0\r\n"
EVENT_STRUCT = np.dtype(
    {"names": ["t", "x", "y", "on"], "formats": ["<i8", "<i2", "<i2", "u1"], "itemsize": 16}
)
COMPRESSION = {0: "none", 1: "lz4", 2: "lz4", 3: "zstd", 4: "zstd"}
#: Largest decompressed packet accepted (guards against decompression bombs).
MAX_PACKET_BYTES = 1 << 28
#: Largest IOHeader accepted (real headers are a few kB of XML).
MAX_HEADER_BYTES = 1 << 24


def _decompress(data: Any, method: str) -> Any:
    """Decompress ``data`` (bytes or a ``uint8`` view of the file; never copied whole)."""
    if method == "none":
        return data
    if method == "lz4":
        import lz4.frame

        dec = lz4.frame.LZ4FrameDecompressor()
        out = dec.decompress(memoryview(data), max_length=MAX_PACKET_BYTES + 1)
    else:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(memoryview(data))
        out = reader.read(MAX_PACKET_BYTES + 1)
    if len(out) > MAX_PACKET_BYTES:
        raise ValueError(f"decompressed packet exceeds {MAX_PACKET_BYTES} bytes")
    return out


def parse_streams(info: str) -> dict[int, dict[str, Any]]:
    """Stream id -> ``{"type", "name", "size"}`` from the header's XML info node."""
    streams: dict[int, dict[str, Any]] = {}
    root = ET.fromstring(info)
    for out in root.iter("node"):
        if out.get("name") != "outInfo":
            continue
        for node in out.findall("node"):
            name = node.get("name", "")
            if not name.isdigit():
                continue
            attrs = {a.get("key"): a.text for a in node.findall("attr")}
            info_node = next((n for n in node.findall("node") if n.get("name") == "info"), None)
            size = None
            if info_node is not None:
                sub = {a.get("key"): a.text for a in info_node.findall("attr")}
                if (sub.get("sizeX") or "").isdigit() and (sub.get("sizeY") or "").isdigit():
                    size = (int(sub["sizeX"]), int(sub["sizeY"]), 2)
            streams[int(name)] = {
                "type": attrs.get("typeIdentifier"),
                "name": attrs.get("originalOutputName"),
                "size": size,
            }
    return streams


def _read_header(buf: Any, path: PathLike) -> tuple[dict[str, Any], int]:
    """Parse the version line and the IOHeader of the file's bytes ``buf`` (a memory map:
    nothing past the header is read here)."""
    if bytes(buf[: len(MAGIC)]) != MAGIC:
        raise EventFormatError(path, 0, "expected the version line '#!AER-DAT4.0\\r\\n'")
    pos = len(MAGIC)
    if len(buf) < pos + 4:
        raise EventFormatError(path, pos, "file ends before the header size")
    size = struct.unpack_from("<i", buf, pos)[0]
    body = pos + 4
    if size <= 0 or body + size > len(buf):
        raise EventFormatError(path, pos, f"header size {size} does not fit in the file")
    if size > MAX_HEADER_BYTES:
        raise EventFormatError(path, pos, f"header size {size} exceeds {MAX_HEADER_BYTES} bytes")
    try:
        table = fb.root(bytes(buf[body : body + size]), b"IOHE")
        compression = table.scalar(0, "i", 0)
        table_pos = table.scalar(1, "q", -1)
        info = table.string(2) or ""
    except fb.FlatBufferError as exc:
        raise EventFormatError(path, body + exc.offset, f"bad IOHeader: {exc}") from exc
    if compression not in COMPRESSION:
        raise EventFormatError(path, body, f"unknown compression type {compression}")
    try:
        streams = parse_streams(info) if info else {}
    except ET.ParseError as exc:
        raise EventFormatError(path, body, f"header info node is not valid XML: {exc}") from exc
    header = {
        "compression": COMPRESSION[compression],
        "data_table_position": table_pos,
        "streams": streams,
        "info": info,
    }
    return header, body + size


#: One row of the file's packet index (``FTAB`` data table).
TABLE_DTYPE = np.dtype(
    [
        ("offset", "<i8"),
        ("stream", "<i4"),
        ("size", "<i4"),
        ("count", "<i8"),
        ("t_first", "<i8"),
        ("t_last", "<i8"),
    ]
)


def read_data_table(buf: bytes, header: dict[str, Any]) -> np.ndarray | None:
    """The packet index at ``dataTablePosition`` (``None`` when absent or unreadable).

    Each row: data byte offset, stream id, packet size, element count, first and last
    timestamp.
    """
    pos = header["data_table_position"]
    if pos < 0 or pos >= len(buf):
        return None
    try:
        data = _decompress(buf[pos:], header["compression"])
        rows = []
        for e in fb.root(data, b"FTAB", size_prefixed=True).table_vector(0):
            info = e.inline_struct(1, "ii") or (-1, -1)
            rows.append(
                (
                    e.scalar(0, "q", -1),
                    info[0],
                    info[1],
                    e.scalar(2, "q", 0),
                    e.scalar(3, "q", 0),
                    e.scalar(4, "q", 0),
                )
            )
    except Exception:  # a damaged index is not fatal: packets are read sequentially
        return None
    return np.array(rows, dtype=TABLE_DTYPE)


def _seek_packets(
    table: np.ndarray, sid: int, start, stop, t_start, t_end
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of stream ``sid`` that may hold events of the range, and their first indices."""
    rows = table[table["stream"] == sid]
    first = np.concatenate([[0], np.cumsum(rows["count"])[:-1]]).astype(np.int64)
    keep = np.ones(rows.size, dtype=bool)
    if start is not None:
        keep &= first + rows["count"] > start
    if stop is not None:
        keep &= first < stop
    if t_start is not None:
        keep &= rows["t_last"] >= t_start
    if t_end is not None:
        keep &= rows["t_first"] < t_end
    return rows[keep], first[keep]


def _pick_stream(streams: dict[int, dict[str, Any]], stream: int | str | None, path) -> int:
    events = [i for i, s in sorted(streams.items()) if s["type"] == "EVTS"]
    if stream is None:
        if not events:
            raise EventFormatError(path, None, f"no event (EVTS) stream among {streams}")
        return events[0]
    if isinstance(stream, str):
        named = [i for i in events if streams[i]["name"] == stream]
        if not named:
            raise ValueError(f"{path}: no event stream named {stream!r}; event streams: {events}")
        return named[0]
    if stream not in events:
        raise ValueError(f"{path}: stream {stream} is not an event stream; event streams: {events}")
    return int(stream)


def read_aedat4(
    path: PathLike,
    *,
    stream: int | str | None = None,
    sensor_size: Any = None,
    start: int | None = None,
    stop: int | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
) -> Recording:
    """Read the polarity events of one stream of an AEDAT 4.0 file.

    Args:
        path: File to read.
        stream: Stream id or output name (``"events"``); default the first ``EVTS`` stream.
        sensor_size: ``(W, H, P)`` overriding the stream's ``sizeX``/``sizeY``.
        start: First event index; ``stop``: one past the last (later packets are not read).
        t_start: Keep ``t >= t_start``; ``t_end``: keep ``t < t_end`` (microseconds).

    The file is memory-mapped and its version line and header are checked before anything
    else is read; with a range and a readable data table (the file's packet index), only the
    packets of the range are read and decompressed; without one, packets are read in order up
    to the range's end. Memory follows the packets read, not the file size.

    Raises:
        EventFormatError: wrong magic, bad header FlatBuffer, truncated or corrupt packet,
            event outside the sensor.
        ValueError: ``stream`` names no event stream.
    """
    check_range_args(start, stop, t_start, t_end)
    buf = read_file_bytes(path)  # memory-mapped: pages are loaded only where read
    header, pos = _read_header(buf, path)
    sid = _pick_stream(header["streams"], stream, path)
    header["stream"] = sid
    from_header = header["streams"][sid]["size"]
    size = check_sensor_size(sensor_size) if sensor_size is not None else from_header
    end = len(buf)
    if header["data_table_position"] >= 0:
        end = min(end, header["data_table_position"])
    ranged = any(v is not None for v in (start, stop, t_start, t_end))
    table = read_data_table(buf, header) if ranged else None
    header["seek"] = table is not None
    if table is not None:
        rows, first = _seek_packets(table, sid, start, stop, t_start, t_end)
        chunks, index = [], []
        for row, k0 in zip(rows, first):
            pos = int(row["offset"]) - 8
            vec = _packet_events(buf, pos, end, sid, header["compression"], size, path)
            if vec is None or vec.size != row["count"]:
                raise EventFormatError(
                    path, pos, "packet does not match the file's data table (stream/count)"
                )
            chunks.append(vec)
            index.append(k0 + np.arange(vec.size))
        raw = np.concatenate(chunks) if chunks else np.empty(0, dtype=EVENT_STRUCT)
        idx = np.concatenate(index) if index else np.zeros(0, np.int64)
        keep = np.ones(raw.size, dtype=bool)
        if start is not None:
            keep &= idx >= start
        if stop is not None:
            keep &= idx < stop
        raw = raw[keep]
        events = make_events(raw["x"], raw["y"], raw["t"], raw["on"])
        sensor = resolve_sensor_size(sensor_size, from_header, events, header, path)
        return Recording(select_range(events, None, None, t_start, t_end), sensor, header)
    chunks = []
    n_events = 0
    while pos < end:
        packet_size = _packet_size(buf, pos, end, path)
        vec = _packet_events(buf, pos, end, sid, header["compression"], size, path)
        if vec is not None:
            chunks.append(vec)
            n_events += vec.size
            if stop is not None and n_events >= stop:
                break
            if t_end is not None and vec.size and vec["t"][-1] >= t_end:
                break
        pos += 8 + packet_size
    raw = np.concatenate(chunks) if chunks else np.empty(0, dtype=EVENT_STRUCT)
    events = make_events(raw["x"], raw["y"], raw["t"], raw["on"])
    sensor = resolve_sensor_size(sensor_size, from_header, events, header, path)
    return Recording(select_range(events, start, stop, t_start, t_end), sensor, header)


def _packet_size(buf: bytes, pos: int, end: int, path: PathLike) -> int:
    if pos < 0 or pos + 8 > end:
        raise EventFormatError(path, max(pos, 0), "file ends inside a packet header")
    size = struct.unpack_from("<i", buf, pos + 4)[0]
    if size < 0 or pos + 8 + size > end:
        raise EventFormatError(path, pos, f"packet size {size} runs past the data")
    return size


def _packet_events(
    buf: bytes,
    pos: int,
    end: int,
    sid: int,
    compression: str,
    size: tuple[int, int, int] | None,
    path: PathLike,
) -> np.ndarray | None:
    """Events of the packet at ``pos`` (``None`` when it belongs to another stream)."""
    packet_size = _packet_size(buf, pos, end, path)
    if struct.unpack_from("<i", buf, pos)[0] != sid:
        return None
    body = pos + 8
    try:
        data = _decompress(buf[body : body + packet_size], compression)
        vec = fb.root(data, b"EVTS", size_prefixed=True).struct_vector(0, EVENT_STRUCT)
    except fb.FlatBufferError as exc:
        raise EventFormatError(path, pos, f"bad event packet: {exc}") from exc
    except Exception as exc:  # decompressor errors have library-specific types
        raise EventFormatError(path, pos, f"cannot decompress packet: {exc}") from exc
    if vec.size and int(vec["on"].max()) > 1:
        raise EventFormatError(path, pos, "event polarity byte is not 0 or 1")
    if size is not None and vec.size:
        _check_packet(vec, size, path, pos)
    return vec


def _check_packet(vec: np.ndarray, size: tuple[int, int, int], path: PathLike, pos: int) -> None:
    x, y = vec["x"], vec["y"]
    bad = (x < 0) | (x >= size[0]) | (y < 0) | (y >= size[1])
    if bad.any():
        i = int(np.argmax(bad))
        raise EventFormatError(
            path,
            pos,
            f"packet event {i} has x={int(x[i])}, y={int(y[i])} outside the sensor of size {size}",
        )
