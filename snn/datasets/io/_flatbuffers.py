"""Bounds-checked reading of the few FlatBuffers tables AEDAT 4.0 uses.

Only what the format needs: the root table, scalar fields, strings and vectors of structs.
Every offset is checked against the buffer so corrupt input raises instead of reading junk.
``buf`` may be ``bytes`` or a ``uint8`` array (a memory-mapped file: only what is read is loaded).
"""

from __future__ import annotations

import struct

import numpy as np


class FlatBufferError(ValueError):
    """An offset or length points outside the buffer; ``offset`` is buffer-relative."""

    def __init__(self, offset: int, message: str) -> None:
        self.offset = offset
        super().__init__(message)


class Table:
    """One FlatBuffers table inside ``buf`` at position ``pos``."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        _need(buf, pos, 4)
        vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        _need(buf, vtable, 4)
        vsize, _ = struct.unpack_from("<HH", buf, vtable)
        if vsize < 4 or vsize % 2:
            raise FlatBufferError(vtable, f"vtable size {vsize} is invalid")
        _need(buf, vtable, vsize)
        self.fields = struct.unpack_from(f"<{(vsize - 4) // 2}H", buf, vtable + 4)

    def _field(self, index: int) -> int | None:
        if index >= len(self.fields) or self.fields[index] == 0:
            return None
        return self.pos + self.fields[index]

    def scalar(self, index: int, fmt: str, default: int) -> int:
        """Scalar field ``index`` (struct format ``fmt``), or ``default`` when absent."""
        at = self._field(index)
        if at is None:
            return default
        _need(self.buf, at, struct.calcsize(fmt))
        return struct.unpack_from("<" + fmt, self.buf, at)[0]

    def _indirect(self, index: int) -> int | None:
        at = self._field(index)
        if at is None:
            return None
        _need(self.buf, at, 4)
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def string(self, index: int) -> str | None:
        """String field ``index`` (UTF-8), or ``None`` when absent."""
        at = self._indirect(index)
        if at is None:
            return None
        _need(self.buf, at, 4)
        n = struct.unpack_from("<I", self.buf, at)[0]
        _need(self.buf, at + 4, n)
        return bytes(self.buf[at + 4 : at + 4 + n]).decode("utf-8", errors="replace")

    def inline_struct(self, index: int, fmt: str) -> tuple | None:
        """Struct stored inline in the table (struct format ``fmt``), or ``None`` when absent."""
        at = self._field(index)
        if at is None:
            return None
        _need(self.buf, at, struct.calcsize("<" + fmt))
        return struct.unpack_from("<" + fmt, self.buf, at)

    def table_vector(self, index: int) -> list[Table]:
        """Vector-of-tables field ``index`` (empty when absent)."""
        at = self._indirect(index)
        if at is None:
            return []
        _need(self.buf, at, 4)
        n = struct.unpack_from("<I", self.buf, at)[0]
        _need(self.buf, at + 4, 4 * n)
        out = []
        for k in range(n):
            p = at + 4 + 4 * k
            out.append(Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]))
        return out

    def struct_vector(self, index: int, dtype: np.dtype) -> np.ndarray:
        """Vector-of-structs field ``index`` as a numpy view (empty when absent)."""
        at = self._indirect(index)
        if at is None:
            return np.empty(0, dtype=dtype)
        _need(self.buf, at, 4)
        n = struct.unpack_from("<I", self.buf, at)[0]
        _need(self.buf, at + 4, n * dtype.itemsize)
        return np.frombuffer(self.buf, dtype=dtype, count=n, offset=at + 4)


def root(buf: bytes, identifier: bytes | None = None, size_prefixed: bool = False) -> Table:
    """The root table of a FlatBuffer, checking the 4-byte file identifier when given.

    With ``size_prefixed`` the buffer starts with a ``uint32`` length of the rest.
    """
    if size_prefixed:
        _need(buf, 0, 4)
        n = struct.unpack_from("<I", buf, 0)[0]
        _need(buf, 4, n)
        buf = buf[4 : 4 + n]
    _need(buf, 0, 8 if identifier else 4)
    if identifier is not None and bytes(buf[4:8]) != identifier:
        raise FlatBufferError(4, f"identifier {bytes(buf[4:8])!r}, expected {identifier!r}")
    return Table(buf, struct.unpack_from("<I", buf, 0)[0])


def _need(buf: bytes, pos: int, n: int) -> None:
    if pos < 0 or n < 0 or pos + n > len(buf):
        raise FlatBufferError(max(pos, 0), f"{n} bytes at {pos} lie outside {len(buf)} bytes")
