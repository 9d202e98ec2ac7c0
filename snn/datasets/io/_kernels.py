"""Compiled decoders for the stateful Prophesee RAW encodings (EVT 2.0, EVT 3.0).

Each kernel walks the word stream once and writes straight into a preallocated structured
array of :data:`~snn.datasets.io._common.EVENT_DTYPE`. Kernels never raise: they return a status
code and the index of the offending word, and the Python wrapper turns that into an
:class:`~snn.datasets.io._common.EventFormatError` with a byte offset.

Status codes: ``0`` ok, ``1`` coordinate outside the sensor, ``2`` reserved word type,
``3`` the requested range has ended (read no further). The EVT decoders take one chunk of
words at a time and carry their state (time base, wrap count, row, event index) in a small
int64 array, so a file is decoded through a fixed buffer.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OK = 0
OUT_OF_RANGE = 1
BAD_TYPE = 2
DONE = 3

_EVT2_WRAP = np.int64(1) << 34  # 28-bit time high, 6-bit low
_EVT3_WRAP = np.int64(1) << 24  # 12-bit time high, 12-bit low


#: Decoder state carried from one chunk of words to the next (one int64 array per file).
EVT2_STATE = ("time_high", "last_raw", "wrap", "index", "skipped")
EVT3_STATE = ("time_high", "last_raw", "wrap", "index", "skipped", "time_low", "y", "base_x",
              "vector_polarity")  # fmt: skip


def new_state(fields: tuple[str, ...]) -> np.ndarray:
    """Initial decoder state: no time base (``-1``), no row, nothing decoded."""
    state = np.zeros(len(fields), dtype=np.int64)
    state[0] = state[1] = -1
    if "y" in fields:
        state[fields.index("y")] = -1
    return state


@njit(cache=True, nogil=True)
def decode_evt2(words, out, state, start, stop, t_lo, t_hi, width, height):  # pragma: no cover
    """Decode a chunk of EVT 2.0 32-bit words, continuing from ``state`` (updated in place).

    Returns:
        ``(n_written, status, word_index)``; status :data:`DONE` when the range has ended.
    """
    th = state[0]
    last_raw = state[1]
    wrap = state[2]
    k = state[3]  # file-order index of the next decoded event
    skipped = state[4]
    n = 0
    status = OK
    index = -1
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
                status, index = OUT_OF_RANGE, i
                break
            if k >= stop:
                status = DONE
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
                status = DONE
                break
        elif typ != 0xA and typ != 0xE and typ != 0xF:
            status, index = BAD_TYPE, i
            break
    state[0] = th
    state[1] = last_raw
    state[2] = wrap
    state[3] = k
    state[4] = skipped
    return n, status, index


@njit(cache=True, nogil=True)
def decode_evt2_all(words, out, state, width, height):  # pragma: no cover - jit
    """:func:`decode_evt2` without range arguments: fewer branches per word (same results)."""
    th = state[0]
    last_raw = state[1]
    wrap = state[2]
    skipped = state[4]
    n = 0
    i = 0
    nw = words.shape[0]
    while th < 0 and i < nw:  # CD words before the first TIME_HIGH have no time base
        w = words[i]
        typ = w >> 28
        if typ == 8:
            break
        if typ <= 1:
            skipped += 1
        elif typ != 0xA and typ != 0xE and typ != 0xF:
            state[4] = skipped
            return n, BAD_TYPE, i
        i += 1
    status = OK
    index = -1
    while i < nw:
        w = words[i]
        typ = w >> 28
        if typ <= 1:
            x = (w >> 11) & 0x7FF
            y = w & 0x7FF
            if x >= width or y >= height:
                status, index = OUT_OF_RANGE, i
                break
            r = out[n]
            r.x = x
            r.y = y
            r.t = th | ((w >> 22) & 0x3F)
            r.p = typ == 1
            n += 1
        elif typ == 8:
            raw = np.int64(w & 0x0FFFFFFF)
            if raw < last_raw:
                wrap += _EVT2_WRAP
            last_raw = raw
            th = wrap + (raw << 6)
        elif typ != 0xA and typ != 0xE and typ != 0xF:
            status, index = BAD_TYPE, i
            break
        i += 1
    state[0] = th
    state[1] = last_raw
    state[2] = wrap
    state[3] += n
    state[4] = skipped
    return n, status, index


@njit(cache=True, nogil=True)
def count_evt3(words):  # pragma: no cover - jit
    """Upper bound on the number of events in EVT 3.0 words (singles plus vector bits)."""
    n = 0
    for i in range(words.shape[0]):
        w = words[i]
        typ = w >> 12
        n += typ == 2  # branch-free: word types alternate unpredictably
        if typ == 4 or typ == 5:  # vectors are rare enough for this branch to predict well
            m = w & (0xFFF if typ == 4 else 0xFF)
            while m:
                m &= m - 1
                n += 1
    return n


@njit(cache=True, nogil=True)
def decode_evt3(words, out, state, start, stop, t_lo, t_hi, width, height):  # pragma: no cover
    """Decode a chunk of EVT 3.0 16-bit words, continuing from ``state`` (updated in place).

    Time is ``(time_high << 12) | time_low`` (24 bits); it wraps (adds ``2**24``) only when a
    TIME_HIGH word is smaller than the previous TIME_HIGH. A TIME_HIGH word resets the low
    part to zero. Events before the first TIME_HIGH or the first ADDR_Y have no defined time or
    row and are counted, not written.

    Returns:
        ``(n_written, status, word_index)``; status :data:`DONE` when the range has ended.
    """
    th = state[0]
    last_raw = state[1]
    wrap = state[2]
    k = state[3]
    skipped = state[4]
    tl = state[5]
    y = state[6]
    base_x = state[7]
    vpol = state[8] == 1
    n = 0
    status = OK
    index = -1
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        typ = w >> 12
        if typ == 0:  # EVT_ADDR_Y
            y = w & 0x7FF
            if y >= height:
                status, index = OUT_OF_RANGE, i
                break
        elif typ == 2:  # EVT_ADDR_X: one event
            if th < 0 or y < 0:
                skipped += 1
                continue
            x = w & 0x7FF
            if x >= width:
                status, index = OUT_OF_RANGE, i
                break
            if k >= stop:
                status = DONE
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
                                status, index = OUT_OF_RANGE, i
                                break
                            if k >= stop:
                                status = DONE
                                break
                            if k >= start and t >= t_lo and t < t_hi:
                                r = out[n]
                                r.x = x
                                r.y = y
                                r.t = t
                                r.p = vpol
                                n += 1
                            k += 1
                    if status != OK:
                        break
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
                status = DONE
                break
        elif typ != 7 and typ != 0xA and typ != 0xE and typ != 0xF:
            status, index = BAD_TYPE, i
            break
    state[0] = th
    state[1] = last_raw
    state[2] = wrap
    state[3] = k
    state[4] = skipped
    state[5] = tl
    state[6] = y
    state[7] = base_x
    state[8] = 1 if vpol else 0
    return n, status, index


@njit(cache=True, nogil=True)
def decode_dat(ts, data, out, width, height):  # pragma: no cover - jit
    """Decode DAT CD records (``x`` bits 13..0, ``y`` 27..14, ``p`` 31..28).

    Returns:
        ``(status, record_index)``: status 0 ok, 1 coordinate outside the sensor,
        2 polarity above 1.
    """
    for i in range(ts.shape[0]):
        d = data[i]
        p = d >> 28
        if p > 1:
            return 2, i
        x = d & 0x3FFF
        y = (d >> 14) & 0x3FFF
        if x >= width or y >= height:
            return OUT_OF_RANGE, i
        r = out[i]
        r.x = x
        r.y = y
        r.t = ts[i]
        r.p = p == 1
    return OK, -1
