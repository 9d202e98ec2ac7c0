"""Numba loops that store a tensor of spikes (or small counts) exactly in less space, and
restore it, in one pass and without temporaries (used by :mod:`snn.layers.lean`).

:func:`pack_bits` checks that every value is ``0`` or ``1`` (bit patterns, so ``-0.0`` is not
``0``) while it packs them eight to a byte, first value in the most significant bit (the
layout of ``numpy.packbits``); :func:`pack_u8` checks that every value is an integer in
``[0, 255]`` (again not ``-0.0``) while it stores it in one byte; each returns ``False`` at the
first value that does not fit, and the caller keeps the tensor as it is. :func:`unpack_bits`
writes the values back into a float buffer. The torch route (comparisons, ``all``,
``numpy.packbits``, ``unpackbits`` then a cast) takes several passes and allocates boolean and
byte temporaries as large as the tensor; these take one pass each and allocate nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["pack_bits", "pack_u8", "unpack_bits"]


@njit(cache=True, nogil=True)
def pack_bits(b, one, out):  # pragma: no cover - compiled
    """Pack the values of ``b`` (an integer view of a float array, flat) into bits of ``out``
    (``uint8``, ``ceil(n / 8)``): bit set where ``b == one`` (the bit pattern of 1.0), clear
    where ``b == 0``; ``False`` when any other value occurs."""
    n = b.shape[0]
    full = n // 8
    for i in range(full):  # branch-free inside a byte: one test per byte
        base = i * 8
        acc = 0
        bad = 0
        for j in range(8):
            v = b[base + j]
            hit = 1 if v == one else 0
            acc = (acc << 1) | hit
            bad |= (1 - hit) & (1 if v != 0 else 0)
        if bad:
            return False
        out[i] = acc
    if full * 8 < n:
        acc = 0
        for j in range(full * 8, n):
            v = b[j]
            if v == one:
                acc |= 128 >> (j - full * 8)
            elif v != 0:
                return False
        out[full] = acc
    return True


@njit(cache=True, nogil=True)
def pack_u8(x, b, out):  # pragma: no cover - compiled
    """Store the values of ``x`` (a float array, flat; ``b`` its integer view) in ``out``
    (``uint8``, same length); ``False`` unless every value is an integer in ``[0, 255]``
    other than ``-0.0``."""
    for i in range(x.shape[0]):
        v = x[i]
        if not (v >= 0 and v <= 255):
            return False
        q = np.uint8(v)
        if v != q or (q == 0 and b[i] != 0):
            return False
        out[i] = q
    return True


@njit(cache=True, nogil=True)
def unpack_bits(packed, out):  # pragma: no cover - compiled
    """The values :func:`pack_bits` packed, as ``0.0``/``1.0`` in the float array ``out``
    (flat, the original length)."""
    n = out.shape[0]
    full = n // 8
    for i in range(full):
        byte = np.int32(packed[i])
        base = i * 8
        for j in range(8):
            out[base + j] = (byte >> (7 - j)) & 1
    for k in range(full * 8, n):
        out[k] = (np.int32(packed[k >> 3]) >> (7 - (k & 7))) & 1
