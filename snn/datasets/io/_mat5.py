"""A streaming reader of MATLAB level-5 MAT files, enough for event recordings.

The level-5 format (MATLAB 5 to 7.2 ``save``; MathWorks, "MAT-File Format", chapter 1) is a
128-byte header followed by data elements, each an 8-byte tag (type, byte count) and its data.
A variable is a ``miMATRIX`` element, stored as is or inside a zlib-compressed
``miCOMPRESSED`` element; inside it, sub-elements give the array flags (class), the
dimensions, the name and the data (numeric arrays), or the field names and one ``miMATRIX``
per field (structs). Small sub-elements of at most 4 bytes share their tag's 8 bytes.

Memory is bounded by the work asked for, not by what a file declares: every declared size is
checked against what holds it before anything of that size is read (a top-level element
against the file size, a sub-element against its parent, the uncompressed size of a
compressed element against zlib's largest possible expansion of its compressed bytes, an
array's element count against the caller's limit), only the variables asked for are decoded
(the others are skipped: seeked over, or never decompressed), and data is read with reads no
larger than the checked size, so a file that claims more than it holds fails with one
:class:`~snn.datasets.io.EventFormatError` instead of an allocation of the claimed size.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from snn.datasets.io._common import EventFormatError, PathLike

MI_INT8, MI_UINT32, MI_INT32, MI_MATRIX, MI_COMPRESSED, MI_UTF8 = 1, 6, 5, 14, 15, 16
MI_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8",
             13: "u8"}
"""Numeric element types and their numpy codes (``miINT8`` ... ``miUINT64``)."""
MX_STRUCT = 2
MX_NUMERIC = range(6, 16)  # mxDOUBLE_CLASS ... mxUINT64_CLASS
MX_NAMED = range(1, 16)  # classes whose flags are followed by dimensions and a name
ZLIB_MAX_RATIO = 1032
"""Deflate's largest expansion: one compressed byte never becomes more than 1032 bytes."""
MAX_DIMS = 32
MAX_NAME = 4096
MAX_DEPTH = 8
CHUNK = 1 << 16


class _Source:
    """Bytes of one top-level element (raw, or decompressed on the fly), read in order under
    nested limits: a read past the innermost declared element end is an error, not a short
    read, and no read is larger than a size already checked."""

    def __init__(self, f: BinaryIO, path: PathLike, offset: int, size: int, compressed: bool):
        self.f, self.path, self.offset = f, path, offset
        self.left = size  # raw (or compressed) bytes of the element still in the file
        self.pos = 0  # logical (decompressed) position
        self.limits = [math.inf if compressed else size]
        self.inflate = zlib.decompressobj() if compressed else None
        self.buf = bytearray()
        self.what = "compressed element" if compressed else "element"
        f.seek(offset + 8)

    def fail(self, message: str) -> EventFormatError:
        return EventFormatError(self.path, self.offset, f"{self.what}: {message}")

    def push(self, nbytes: int, what: str) -> None:
        """Enter a sub-element of ``nbytes`` bytes (checked against its parent)."""
        room = self.limits[-1] - self.pos
        if nbytes > room:
            raise self.fail(f"{what} declares {nbytes} bytes but its enclosing element holds "
                            f"only {int(room) if room != math.inf else 'the rest'}")
        self.limits.append(self.pos + nbytes)

    def pop(self) -> None:
        """Leave the innermost sub-element, skipping what was not read of it."""
        end = self.limits.pop()
        self.skip(int(end - self.pos))

    def _fill(self, n: int) -> None:
        assert self.inflate is not None
        while len(self.buf) < n:
            tail = self.inflate.unconsumed_tail
            if not tail:
                if self.left <= 0:
                    raise self.fail("the compressed data ends before the sizes it declares")
                tail = self.f.read(min(CHUNK, self.left))
                if not tail:
                    raise self.fail("the file ends inside the compressed data")
                self.left -= len(tail)
            try:
                self.buf += self.inflate.decompress(tail, max(n - len(self.buf), CHUNK))
            except zlib.error as exc:
                raise self.fail(f"corrupt compressed data ({exc})") from None

    def read(self, n: int) -> bytes:
        if self.pos + n > self.limits[-1]:
            raise self.fail(f"a sub-element needs {n} bytes past the end of its element")
        if self.inflate is None:
            data = self.f.read(n)
            if len(data) < n:
                raise self.fail(f"the file ends {len(data)} of {n} bytes into a sub-element")
        else:
            self._fill(n)
            data = bytes(self.buf[:n])
            del self.buf[:n]
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n <= 0:
            return
        if self.pos + n > self.limits[-1]:
            raise self.fail(f"a sub-element needs {n} bytes past the end of its element")
        if self.inflate is None:
            self.f.seek(n, 1)
            self.pos += n
            return
        while n:
            step = min(n, CHUNK)
            self.read(step)
            n -= step


@dataclass
class Variable:
    """A variable of the file: its name, MATLAB class, dimensions and where it starts."""

    name: str
    cls: int
    dims: tuple[int, ...]
    offset: int
    fields: tuple[str, ...] = ()


class Mat5:
    """The variables of a level-5 MAT file, decoded on request.

    Args:
        path: the file.
        f: the file opened for binary reading (kept open by the caller).
        max_values: refuse an array declaring more elements than this (``None``: no limit
            beyond what the file can hold).

    Raises:
        EventFormatError: not a level-5 MAT file, or a declared size the file cannot hold.
    """

    def __init__(self, path: PathLike, f: BinaryIO, max_values: int | None = None):
        self.path, self.f, self.max_values = path, f, max_values
        f.seek(0, 2)
        self.size = f.tell()
        f.seek(0)
        head = f.read(128)
        if len(head) < 128:
            raise EventFormatError(path, 0, f"a MAT file starts with a 128-byte header, got "
                                            f"{len(head)} bytes")
        if head[126:128] not in (b"IM", b"MI"):
            raise EventFormatError(path, 126, f"endian indicator {head[126:128]!r}, expected "
                                              "b'IM' or b'MI' (not a MATLAB 5 MAT file)")
        self.endian = "<" if head[126:128] == b"IM" else ">"
        version = int.from_bytes(head[124:126], "little" if self.endian == "<" else "big")
        if version != 0x0100:
            raise EventFormatError(path, 124, f"MAT file version {version:#06x}, expected 0x0100")
        self.variables: dict[str, Variable] = {}
        self._scan()

    # -- tags ---------------------------------------------------------------------------------
    def _u32(self, b: bytes) -> int:
        return int.from_bytes(b, "little" if self.endian == "<" else "big")

    def _tag(self, src: _Source) -> tuple[int, int, bytes | None]:
        """``(type, nbytes, small data or None)`` of the next sub-element."""
        raw = src.read(8)
        first = self._u32(raw[:4])
        if first >> 16:  # small data element: 2-byte count, 2-byte type, data in the tag
            nbytes, mtype = first >> 16, first & 0xFFFF
            if nbytes > 4:
                raise src.fail(f"small data element declares {nbytes} bytes (at most 4)")
            return mtype, nbytes, raw[4:4 + nbytes]
        return first, self._u32(raw[4:]), None

    def _element(self, src: _Source, expect: tuple[int, ...], what: str,
                 limit: int) -> tuple[int, bytes]:
        """Type and data of the next sub-element (at most ``limit`` bytes), padding skipped."""
        mtype, nbytes, small = self._tag(src)
        if mtype not in expect:
            raise src.fail(f"{what} has element type {mtype}, expected one of {expect}")
        if small is not None:
            return mtype, small
        if nbytes > limit:
            raise src.fail(f"{what} declares {nbytes} bytes, more than {limit}")
        src.push(nbytes, what)
        data = src.read(nbytes)
        src.pop()
        self._pad(src, nbytes)
        return mtype, data

    @staticmethod
    def _pad(src: _Source, nbytes: int) -> None:
        """Skip the padding to 8 bytes after a sub-element (absent at the very end)."""
        src.skip(int(min((-nbytes) % 8, src.limits[-1] - src.pos)))

    def _ints(self, mtype: int, data: bytes) -> np.ndarray:
        dt = np.dtype(MI_DTYPES[mtype]).newbyteorder(self.endian)
        if len(data) % dt.itemsize:
            raise EventFormatError(self.path, None, "integer sub-element of a partial size")
        return np.frombuffer(data, dt).astype(np.int64)

    # -- arrays -------------------------------------------------------------------------------
    def _header(self, src: _Source) -> tuple[int, bool, tuple[int, ...], str, tuple[str, ...]]:
        """Class, complexity, dimensions, name and (structs) field names of an array."""
        _, flags = self._element(src, (MI_UINT32,), "array flags", 8)
        if len(flags) != 8:
            raise src.fail(f"array flags of {len(flags)} bytes, expected 8")
        word = self._u32(flags[:4])
        cls, complex_ = word & 0xFF, bool(word & 0x800)
        if cls not in MX_NAMED:
            return cls, complex_, (), "", ()
        mtype, raw = self._element(src, (MI_INT32,), "dimensions", 4 * MAX_DIMS)
        dims = tuple(int(d) for d in self._ints(mtype, raw))
        if len(dims) < 2 or min(dims) < 0:
            raise src.fail(f"dimensions {dims} (at least two, none negative)")
        _, raw = self._element(src, (MI_INT8, MI_UTF8), "array name", MAX_NAME)
        name = raw.decode("latin-1")
        fields: tuple[str, ...] = ()
        if cls == MX_STRUCT:
            mtype, raw = self._element(src, (MI_INT32,), "field name length", 4)
            length = int(self._ints(mtype, raw)[0]) if raw else 0
            if not 0 < length <= MAX_NAME:
                raise src.fail(f"field name length {length}")
            _, raw = self._element(src, (MI_INT8, MI_UTF8), "field names",
                                   int(src.limits[-1] - src.pos))
            if len(raw) % length:
                raise src.fail(f"field names of {len(raw)} bytes are not a multiple of {length}")
            fields = tuple(raw[i:i + length].split(b"\0", 1)[0].decode("latin-1")
                           for i in range(0, len(raw), length))
        return cls, complex_, dims, name, fields

    def _numeric(self, src: _Source, dims: tuple[int, ...], name: str) -> np.ndarray:
        count = math.prod(dims)
        if self.max_values is not None and count > self.max_values:
            raise src.fail(f"{name!r} declares {count} values, more than the limit of "
                           f"{self.max_values}")
        mtype, nbytes, small = self._tag(src)
        if mtype not in MI_DTYPES:
            raise src.fail(f"{name!r} holds data of element type {mtype}, not a number")
        dt = np.dtype(MI_DTYPES[mtype]).newbyteorder(self.endian)
        if nbytes != count * dt.itemsize:
            raise src.fail(f"{name!r} declares dimensions {dims} ({count} values of "
                           f"{dt.itemsize} bytes) but its data holds {nbytes} bytes")
        if small is None:
            src.push(nbytes, f"data of {name!r}")
            small = src.read(nbytes)
            src.pop()
            self._pad(src, nbytes)
        return np.frombuffer(small, dt).reshape(dims, order="F")

    def _array(self, src: _Source, label: str, depth: int = 0) -> Any:
        """The array of a ``miMATRIX`` element whose tag was read: numeric array, or a dict of
        field arrays for a 1 x 1 struct (nested at most :data:`MAX_DEPTH` deep); ``None`` for
        anything else."""
        cls, complex_, dims, _, fields = self._header(src)
        if cls in MX_NUMERIC:
            if complex_:
                raise src.fail(f"{label!r} is complex")
            return self._numeric(src, dims, label)
        if cls == MX_STRUCT and math.prod(dims) == 1 and depth < MAX_DEPTH:
            out: dict[str, Any] = {}
            for field in fields:
                mtype, nbytes, _ = self._tag(src)
                if mtype != MI_MATRIX:
                    raise src.fail(f"field {label}.{field} has element type {mtype}")
                src.push(nbytes, f"field {label}.{field}")
                out[field] = (np.zeros((0, 0)) if nbytes == 0
                              else self._array(src, f"{label}.{field}", depth + 1))
                src.pop()
            return out
        return None

    # -- file ---------------------------------------------------------------------------------
    def _open(self, offset: int) -> tuple[_Source, int]:
        """A source over the ``miMATRIX`` of the top-level element at ``offset`` (its tag read),
        and its byte count."""
        self.f.seek(offset)
        tag = self.f.read(8)
        mtype, nbytes = self._u32(tag[:4]), self._u32(tag[4:])
        src = _Source(self.f, self.path, offset, nbytes, mtype == MI_COMPRESSED)
        if mtype == MI_COMPRESSED:
            inner, inner_bytes, small = self._tag(src)
            if inner != MI_MATRIX or small is not None:
                raise src.fail(f"holds element type {inner}, expected a matrix ({MI_MATRIX})")
            if inner_bytes > ZLIB_MAX_RATIO * nbytes + 64:
                raise src.fail(f"declares {inner_bytes} uncompressed bytes, more than "
                               f"{nbytes} compressed bytes can hold")
            src.push(inner_bytes, "matrix")
            return src, inner_bytes
        return src, nbytes

    def _scan(self) -> None:
        pos = 128
        while pos < self.size:
            if self.size - pos < 8:
                raise EventFormatError(self.path, pos, f"{self.size - pos} stray bytes where "
                                                       "an element tag (8 bytes) should be")
            self.f.seek(pos)
            tag = self.f.read(8)
            mtype, nbytes = self._u32(tag[:4]), self._u32(tag[4:])
            if mtype not in (MI_MATRIX, MI_COMPRESSED):
                raise EventFormatError(self.path, pos, f"top-level element type {mtype}, "
                                                       f"expected {MI_MATRIX} or {MI_COMPRESSED}")
            if nbytes > self.size - pos - 8:
                raise EventFormatError(
                    self.path, pos, f"element declares {nbytes} bytes but the file holds only "
                    f"{self.size - pos - 8} after its tag (truncated or corrupt)")
            if nbytes:
                src, _ = self._open(pos)
                cls, _, dims, name, fields = self._header(src)
                if cls in MX_NAMED and name:
                    self.variables[name] = Variable(name, cls, dims, pos, fields)
            pos += 8 + nbytes

    def read(self, name: str) -> Any:
        """The numeric array or 1 x 1 struct (a dict of arrays) named ``name``; ``None`` for a
        variable of another class."""
        src, _ = self._open(self.variables[name].offset)
        return self._array(src, name)
