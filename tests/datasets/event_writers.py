"""Byte-for-byte writers of event files, written from the format specifications.

Used by the tests to make small files in each format; independent of the readers.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def write_evt2(path: Path, x, y, t, p, header: str = "% evt 2.0\n% geometry 640x480\n% end\n"):
    """EVT 2.0: TIME_HIGH word whenever ``t >> 6`` changes, then a CD word per event."""
    words = []
    th = None
    for xi, yi, ti, pi in zip(x, y, t, p):
        if ti >> 6 != th:
            th = ti >> 6
            words.append((0x8 << 28) | (th & 0x0FFFFFFF))
        words.append((int(pi) << 28) | ((ti & 0x3F) << 22) | (xi << 11) | yi)
    Path(path).write_bytes(header.encode() + np.asarray(words, dtype="<u4").tobytes())


def evt3_words(kind: str, value: int, flag: int = 0) -> int:
    """One EVT 3.0 word: kind in ADDR_Y, ADDR_X, VECT_BASE_X, VECT_12, VECT_8, TIME_LOW,
    TIME_HIGH, EXT_TRIGGER, OTHERS, CONTINUED_4, CONTINUED_12."""
    codes = {
        "ADDR_Y": 0x0,
        "ADDR_X": 0x2,
        "VECT_BASE_X": 0x3,
        "VECT_12": 0x4,
        "VECT_8": 0x5,
        "TIME_LOW": 0x6,
        "CONTINUED_4": 0x7,
        "TIME_HIGH": 0x8,
        "EXT_TRIGGER": 0xA,
        "OTHERS": 0xE,
        "CONTINUED_12": 0xF,
    }
    return (codes[kind] << 12) | (flag << 11) | value


def write_evt3(path: Path, words, header: str = "% evt 3.0\n% geometry 1280x720\n% end\n"):
    Path(path).write_bytes(header.encode() + np.asarray(words, dtype="<u2").tobytes())


def write_dat(path: Path, x, y, t, p, header: str = "% Version 2\n% Width 304\n% Height 240\n"):
    data = (np.asarray(p, np.uint32) << 28) | (np.asarray(y, np.uint32) << 14)
    data |= np.asarray(x, np.uint32)
    rec = np.empty(len(data), dtype=[("t", "<u4"), ("d", "<u4")])
    rec["t"] = t
    rec["d"] = data
    Path(path).write_bytes(header.encode() + bytes([0, 8]) + rec.tobytes())


def atis_record(x: int, y: int, t: int, p: int) -> bytes:
    """One 40-bit ATIS record (t is the 23-bit field before overflow correction)."""
    return bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])


def write_atis_bin(path: Path, x, y, t, p) -> None:
    Path(path).write_bytes(b"".join(atis_record(*e) for e in zip(x, y, t, p)))


AEDAT2_HEADER = (
    "#!AER-DAT2.0\r\n# This is a raw AE data file\r\n# AEChip: {chip}\r\n# End of header\r\n"
)


def dvs128_address(x: int, y: int, p: int, external: int = 0) -> int:
    return (external << 15) | (y << 8) | (x << 1) | p


def davis_address(x: int, y: int, p: int, aps: int = 0, imu: int = 0) -> int:
    return (aps << 31) | (y << 22) | (x << 12) | (p << 11) | (imu << 10)


def write_aedat2(path: Path, addresses, timestamps, chip: str) -> None:
    rec = np.empty(len(addresses), dtype=[("a", ">u4"), ("t", ">i4")])
    rec["a"] = addresses
    rec["t"] = timestamps
    Path(path).write_bytes(AEDAT2_HEADER.format(chip=chip).encode() + rec.tobytes())


AEDAT3_HEADER = (
    "#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: {source}\r\n"
    "#Start-Time: 2016-04-01 12:00:00 (TZ+0000)\r\n#!END-HEADER\r\n"
)


def aedat3_packet(
    ev_type: int, source: int, events: bytes, size: int, overflow: int = 0, valid=None
) -> bytes:
    n = len(events) // size
    head = struct.pack(
        "<hhiiiiii", ev_type, source, size, 4, overflow, n, n, n if valid is None else valid
    )
    return head + events


def polarity_events(x, y, t, p, valid=None) -> bytes:
    valid = np.ones(len(x), np.uint32) if valid is None else np.asarray(valid, np.uint32)
    data = (np.asarray(x, np.uint32) << 17) | (np.asarray(y, np.uint32) << 2)
    data |= (np.asarray(p, np.uint32) << 1) | valid
    rec = np.empty(len(data), dtype=[("d", "<u4"), ("t", "<i4")])
    rec["d"] = data
    rec["t"] = t
    return rec.tobytes()


def write_aedat3(path: Path, packets: list[bytes], source: str = "DVS128") -> None:
    Path(path).write_bytes(AEDAT3_HEADER.format(source=source).encode() + b"".join(packets))


# --- AEDAT 4.0 -------------------------------------------------------------------------------


def _flatbuffer_table(identifier: bytes, fields: list[tuple[str, object]]) -> bytes:
    """A minimal FlatBuffer with one root table.

    Layout: [root uoffset][identifier][vtable][table: soffset, fields...][out-of-line data].
    fields: ("i", int32) | ("q", int64) | ("s", str) | ("v16", bytes of 16-byte structs).
    """
    n = len(fields)
    vtable_size = 4 + 2 * n
    vt_pos = 8
    table_pos = vt_pos + vtable_size
    table_pos += (-table_pos) % 8  # align table
    inline = []  # (offset within table, bytes)
    cursor = 4
    for kind, _ in fields:
        width = 8 if kind == "q" else 4
        cursor += (-cursor) % width
        inline.append(cursor)
        cursor += width
    table_size = cursor
    data_pos = table_pos + table_size
    data_pos += (-data_pos) % 8
    buf = bytearray(data_pos)
    extra = bytearray()
    struct.pack_into("<I", buf, 0, table_pos)
    buf[4:8] = identifier
    struct.pack_into("<HH", buf, vt_pos, vtable_size, table_size)
    for i, off in enumerate(inline):
        struct.pack_into("<H", buf, vt_pos + 4 + 2 * i, off)
    struct.pack_into("<i", buf, table_pos, table_pos - vt_pos)
    for (kind, value), off in zip(fields, inline):
        at = table_pos + off
        if kind == "i":
            struct.pack_into("<i", buf, at, value)
        elif kind == "q":
            struct.pack_into("<q", buf, at, value)
        else:
            target = data_pos + len(extra)
            if kind == "v16":
                target += (-(target + 4)) % 8  # struct elements 8-aligned
                extra += bytes(target - data_pos - len(extra))
            struct.pack_into("<I", buf, at, target - at)
            payload = value.encode() + b"\0" if kind == "s" else value
            count = len(payload) - 1 if kind == "s" else len(payload) // 16
            extra += struct.pack("<I", count) + payload
            extra += bytes((-len(extra)) % 4)
    return bytes(buf + extra)


def aedat4_info(streams: list[tuple[int, str, str, int, int]]) -> str:
    """XML info node for streams (id, typeIdentifier, name, sizeX, sizeY)."""
    nodes = "".join(
        f'<node name="{i}" path="/mainloop/Recorder/outInfo/{i}/">'
        f'<attr key="originalOutputName" type="string">{name}</attr>'
        f'<attr key="typeIdentifier" type="string">{typ}</attr>'
        f'<node name="info" path="/mainloop/Recorder/outInfo/{i}/info/">'
        f'<attr key="sizeX" type="int">{sx}</attr><attr key="sizeY" type="int">{sy}</attr>'
        "</node></node>"
        for i, typ, name, sx, sy in streams
    )
    out = '<node name="outInfo" path="/mainloop/Recorder/outInfo/">'
    return f'<dv version="2.0">{out}{nodes}</node></dv>'


def evts_packet(t, x, y, on) -> bytes:
    """Size-prefixed EVTS FlatBuffer with one vector of 16-byte event structs."""
    rec = np.zeros(
        len(t),
        dtype={
            "names": ["t", "x", "y", "on"],
            "formats": ["<i8", "<i2", "<i2", "u1"],
            "itemsize": 16,
        },
    )
    rec["t"], rec["x"], rec["y"], rec["on"] = t, x, y, on
    body = _flatbuffer_table(b"EVTS", [("v16", rec.tobytes())])
    return struct.pack("<I", len(body)) + body


def compress(data: bytes, compression: int) -> bytes:
    if compression == 0:
        return data
    if compression in (1, 2):
        import lz4.frame

        return lz4.frame.compress(data)
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def write_aedat4(path: Path, packets: list[tuple[int, bytes]], compression: int, info: str) -> None:
    """Header then packets ``(stream_id, uncompressed bytes)``; no data table."""
    head = _flatbuffer_table(b"IOHE", [("i", compression), ("q", -1), ("s", info)])
    out = bytearray(b"#!AER-DAT4.0\r\n" + struct.pack("<i", len(head)) + head)
    for sid, data in packets:
        blob = compress(data, compression)
        out += struct.pack("<ii", sid, len(blob)) + blob
    Path(path).write_bytes(bytes(out))


def write_shd(path: Path, times: list, units: list, labels) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        ft = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(np.float32))
        fu = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (tt, uu) in enumerate(zip(times, units)):
            ft[i] = np.asarray(tt, np.float32)
            fu[i] = np.asarray(uu, np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))
