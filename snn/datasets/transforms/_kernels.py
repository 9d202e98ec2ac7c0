"""Compiled loops of the transforms (frame accumulation, voxel grid, denoise).

Callers validate indices first: the loops do no bounds checks of their own.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def accumulate_frames(x, y, p, starts, ends, frames, limit):  # pragma: no cover - jit
    """``frames[i, p, y, x] += 1`` for events ``starts[i] <= j < ends[i]``.

    Returns:
        ``(status, j)``: status 0 ok, 1 a count went past ``limit`` (the dtype's maximum),
        2 event ``j`` lies outside the frame (nothing is written for it or after it).
    """
    n_pol, height, width = frames.shape[1], frames.shape[2], frames.shape[3]
    overflow = False
    for i in range(starts.shape[0]):
        f = frames[i]
        for j in range(starts[i], ends[i]):
            xj, yj, pj = np.int64(x[j]), np.int64(y[j]), np.int64(p[j])
            if xj < 0 or xj >= width or yj < 0 or yj >= height or pj < 0 or pj >= n_pol:
                return 2, j
            v = f[pj, yj, xj] + 1
            if v > limit:
                overflow = True
            f[pj, yj, xj] = v
    return (1 if overflow else 0), -1


@njit(cache=True, nogil=True)
def accumulate_voxels(x, y, sign, tn, grid):  # pragma: no cover - jit
    """Bilinear-in-time voxel accumulation; ``tn`` is time scaled to ``[0, n_bins]``."""
    n_bins = grid.shape[0]
    for j in range(x.shape[0]):
        ti = int(tn[j])
        dt = tn[j] - ti
        if ti < n_bins:
            grid[ti, 0, y[j], x[j]] += sign[j] * (1.0 - dt)
        if ti + 1 < n_bins:
            grid[ti + 1, 0, y[j], x[j]] += sign[j] * dt


@njit(cache=True, nogil=True)
def denoise_mask(x, y, t, width, height, filter_time, history):  # pragma: no cover - jit
    """Keep an event when a 4-neighbour pixel fired within ``filter_time`` before it.

    Every pixel starts as if it last fired at ``history``.
    """
    last = np.full((height, width), history, dtype=np.int64)
    keep = np.zeros(x.shape[0], dtype=np.bool_)
    for j in range(x.shape[0]):
        xj, yj, tj = x[j], y[j], t[j]
        since = tj - filter_time  # a neighbour event at t' > since is recent enough
        ok = (
            (xj > 0 and last[yj, xj - 1] > since)
            or (xj < width - 1 and last[yj, xj + 1] > since)
            or (yj > 0 and last[yj - 1, xj] > since)
            or (yj < height - 1 and last[yj + 1, xj] > since)
        )
        keep[j] = ok
        last[yj, xj] = tj
    return keep
