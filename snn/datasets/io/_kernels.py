"""Compiled decoders for the stateful Prophesee RAW encodings (EVT 2.0, EVT 3.0).

Each kernel walks the word stream once and writes straight into a preallocated structured
array of :data:`~snn.datasets.io._common.EVENT_DTYPE`. Kernels never raise: they return a status
code and the index of the offending word, and the Python wrapper turns that into an
:class:`~snn.datasets.io._common.EventFormatError` with a byte offset.

Status codes: ``0`` ok, ``1`` coordinate outside the sensor, ``2`` reserved word type.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OK = 0
OUT_OF_RANGE = 1
BAD_TYPE = 2

_EVT2_WRAP = np.int64(1) << 34  # 28-bit time high, 6-bit low
_EVT3_WRAP = np.int64(1) << 24  # 12-bit time high, 12-bit low


@njit(cache=True, nogil=True)
def decode_evt2(words, out, start, stop, t_lo, t_hi, width, height):  # pragma: no cover - jit
    """Decode EVT 2.0 32-bit words.

    Returns:
        ``(n_written, status, word_index, n_without_time_base, n_decoded)``.
    """
    th = np.int64(-1)
    last_raw = np.int64(-1)
    wrap = np.int64(0)
    k = np.int64(0)  # file-order index of the next decoded event
    n = 0
    skipped = 0
    for i in range(words.shape[0]):
        w = words[i]
        typ = w >> 28
        if typ <= 1:
            if th < 0:
                skipped += 1
                continue
            x = (w >> 11) & 0x7FF
            y = w & 0x7FF
            if x >= width or y >= height:
                return n, OUT_OF_RANGE, i, skipped, k
            if k >= stop:
                break
            t = th | ((w >> 22) & 0x3F)
            if k >= start and t >= t_lo and t < t_hi:
                r = out[n]
                r.x = x
                r.y = y
                r.t = t
                r.p = typ == 1
                n += 1
            k += 1
        elif typ == 8:
            raw = np.int64(w & 0x0FFFFFFF)
            if raw < last_raw:
                wrap += _EVT2_WRAP
            last_raw = raw
            th = wrap + (raw << 6)
            if th >= t_hi:
                break
        elif typ != 0xA and typ != 0xE and typ != 0xF:
            return n, BAD_TYPE, i, skipped, k
    return n, OK, -1, skipped, k


@njit(cache=True, nogil=True)
def count_evt3(words):  # pragma: no cover - jit
    """Upper bound on the number of events in EVT 3.0 words (singles plus vector bits)."""
    n = 0
    for i in range(words.shape[0]):
        w = words[i]
        typ = w >> 12
        if typ == 2:
            n += 1
        elif typ == 4:
            m = w & 0xFFF
            while m:
                m &= m - 1
                n += 1
        elif typ == 5:
            m = w & 0xFF
            while m:
                m &= m - 1
                n += 1
    return n


@njit(cache=True, nogil=True)
def decode_evt3(words, out, start, stop, t_lo, t_hi, width, height):  # pragma: no cover - jit
    """Decode EVT 3.0 16-bit words.

    Time is ``(time_high << 12) | time_low`` (24 bits); it wraps (adds ``2**24``) only when a
    TIME_HIGH word is smaller than the previous TIME_HIGH. A TIME_HIGH word resets the low
    part to zero. Events before the first TIME_HIGH or the first ADDR_Y have no defined time or
    row and are counted, not written.

    Returns:
        ``(n_written, status, word_index, n_without_time_base, n_decoded)``.
    """
    th = np.int64(-1)
    last_raw = np.int64(-1)
    wrap = np.int64(0)
    tl = np.int64(0)
    y = -1
    base_x = 0
    vpol = False
    k = np.int64(0)
    n = 0
    skipped = 0
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        typ = w >> 12
        if typ == 0:  # EVT_ADDR_Y
            y = w & 0x7FF
            if y >= height:
                return n, OUT_OF_RANGE, i, skipped, k
        elif typ == 2:  # EVT_ADDR_X: one event
            if th < 0 or y < 0:
                skipped += 1
                continue
            x = w & 0x7FF
            if x >= width:
                return n, OUT_OF_RANGE, i, skipped, k
            if k >= stop:
                break
            t = th | tl
            if k >= start and t >= t_lo and t < t_hi:
                r = out[n]
                r.x = x
                r.y = y
                r.t = t
                r.p = ((w >> 11) & 1) == 1
                n += 1
            k += 1
        elif typ == 3:  # VECT_BASE_X
            base_x = w & 0x7FF
            vpol = ((w >> 11) & 1) == 1
        elif typ == 4 or typ == 5:  # VECT_12 / VECT_8
            nbits = 12 if typ == 4 else 8
            m = w & ((1 << nbits) - 1)
            if m != 0:
                if th < 0 or y < 0:
                    while m:
                        m &= m - 1
                        skipped += 1
                else:
                    t = th | tl
                    for j in range(nbits):
                        if (m >> j) & 1:
                            x = base_x + j
                            if x >= width:
                                return n, OUT_OF_RANGE, i, skipped, k
                            if k >= stop:
                                return n, OK, -1, skipped, k
                            if k >= start and t >= t_lo and t < t_hi:
                                r = out[n]
                                r.x = x
                                r.y = y
                                r.t = t
                                r.p = vpol
                                n += 1
                            k += 1
            base_x += nbits
        elif typ == 6:  # EVT_TIME_LOW
            tl = w & 0xFFF
        elif typ == 8:  # EVT_TIME_HIGH
            raw = w & 0xFFF
            if raw < last_raw:
                wrap += _EVT3_WRAP
            last_raw = raw
            th = wrap + (raw << 12)
            tl = 0
            if th >= t_hi:
                break
        elif typ != 7 and typ != 0xA and typ != 0xE and typ != 0xF:
            return n, BAD_TYPE, i, skipped, k
    return n, OK, -1, skipped, k
