"""Numba loops of the fused CPU path: one pass over time forward, one pass backward.

The arithmetic is the same, operation for operation, as :mod:`snn.functional` (and as
``snn/cuda_kernels/neuron.cuh``): every value is computed in the input's dtype with the same
rounding order, no fused multiply-add and no fast-math, so float32 spikes and membranes are
bit-identical to the PyTorch reference. Work is split over blocks of neurons (``prange``);
inside a block the loop runs over time, then over the block's neurons, so memory is read in
contiguous runs and the state stays in cache.

Constants arrive in a small array ``p`` of the input's dtype (index names ``P_*``) so that no
float64 literal promotes the float32 arithmetic.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["BLOCK", "backward", "forward"]

BLOCK = 512
"""Neurons per parallel work item."""

P_ONE, P_ZERO, P_VRESET, P_ALPHA, P_RHO, P_CRHO, P_GAMMA, P_K0, P_K1, P_K2 = range(10)
N_CONST = 10

LIF, LI, CUBA, ALIF = 0, 1, 2, 3
SUBTRACT, HARD, NONE = 0, 1, 2


@njit(cache=True, nogil=True)
def surrogate_grad(sid, z, k0, k1, k2, one, zero):  # pragma: no cover - compiled
    """Surrogate derivative ``sid`` (a ``kernel_id``) at ``z`` with constants ``k0..k2``."""
    if sid == 0:  # atan
        t = k1 * z
        return k0 / (one + t * t)
    if sid == 1:  # sigmoid
        e = one / (one + np.exp(-(k0 * z)))
        return k0 * e * (one - e)
    if sid == 2:  # fast sigmoid
        q = one + k0 * abs(z)
        return one / (q * q)
    if sid == 3:  # soft sign
        q = one + k0 * abs(z)
        q = q * q
        return k0 / (q + q)
    if sid == 4:  # triangle
        return max(zero, k0 - k1 * abs(z))
    if sid == 5:  # piecewise quadratic
        t = k1 * z
        return k0 * max(zero, one - t * t)
    if sid == 6:  # rectangle
        return k0 if abs(z) < k1 else zero
    if sid == 7:  # erf (gaussian)
        t = k1 * z
        return k0 * np.exp(k2 * (t * t))
    return k0  # straight through


@njit(cache=True, parallel=True, nogil=True)
def forward(x, v0, i0, a0, beta, c, thr, p, kind, reset, record,
            spikes, hsave, asave, vrec, vT, iT, aT):  # pragma: no cover - compiled
    """Forward over ``x`` ``[T, N]``; writes spikes, ``h`` (and ``a_{t-1}`` for ALIF), the
    membrane trace when ``record``, and the final state."""
    T, N = x.shape
    bs = 1 if beta.shape[0] > 1 else 0
    ts = 1 if thr.shape[0] > 1 else 0
    one = p[P_ONE]
    zero = p[P_ZERO]
    vr = p[P_VRESET]
    al = p[P_ALPHA]
    rho = p[P_RHO]
    crho = p[P_CRHO]
    gm = p[P_GAMMA]
    nblk = (N + BLOCK - 1) // BLOCK
    for b in prange(nblk):
        n0 = b * BLOCK
        n1 = min(N, n0 + BLOCK)
        v = v0[n0:n1].copy()
        cur = i0[n0:n1].copy()
        a = a0[n0:n1].copy()
        for t in range(T):
            for j in range(n1 - n0):
                n = n0 + j
                u = x[t, n]
                if kind == CUBA:
                    u = al * cur[j] + u
                    cur[j] = u
                h = beta[n * bs] * v[j] + c[n * bs] * u
                if kind == LI:
                    v[j] = h
                    spikes[t, n] = h
                    if record:
                        vrec[t, n] = h
                    continue
                th = thr[n * ts]
                aj = zero
                if kind == ALIF:
                    aj = a[j]
                    asave[t, n] = aj
                    th = th + gm * aj
                s = one if h - th >= zero else zero
                if reset == SUBTRACT:
                    vn = h - s * th
                elif reset == HARD:
                    vn = h - s * (h - vr)
                else:
                    vn = h
                v[j] = vn
                if kind == ALIF:
                    a[j] = rho * aj + crho * s
                spikes[t, n] = s
                hsave[t, n] = h
                if record:
                    vrec[t, n] = vn
        for j in range(n1 - n0):
            vT[n0 + j] = v[j]
            iT[n0 + j] = cur[j]
            aT[n0 + j] = a[j]


@njit(cache=True, parallel=True, nogil=True)
def backward(h, asave, x, v0, beta, c, thr, p, kind, reset, detach, sid,
             gs, gs_mode, gv, gv_mode, gvT, giT, gaT, want_beta, decay_input, want_thr,
             gx, gv0, gi0, ga0, gbeta, gthr):  # pragma: no cover - compiled
    """Reverse pass. ``gs_mode``/``gv_mode``: 0 a full ``[T, N]`` gradient, 1 one value for
    all (an expanded scalar), 2 none. Spikes and post-reset membranes are recomputed from the
    saved ``h``; ``gbeta``/``gthr`` receive per-neuron sums over time (float64)."""
    T, N = gx.shape
    bs = 1 if beta.shape[0] > 1 else 0
    ts = 1 if thr.shape[0] > 1 else 0
    one = p[P_ONE]
    zero = p[P_ZERO]
    vr = p[P_VRESET]
    al = p[P_ALPHA]
    rho = p[P_RHO]
    crho = p[P_CRHO]
    gm = p[P_GAMMA]
    k0 = p[P_K0]
    k1 = p[P_K1]
    k2 = p[P_K2]
    gs_all = gs[0, 0] if gs_mode == 1 else zero
    gv_all = gv[0, 0] if gv_mode == 1 else zero
    nblk = (N + BLOCK - 1) // BLOCK
    for b in prange(nblk):
        n0 = b * BLOCK
        n1 = min(N, n0 + BLOCK)
        dv = gvT[n0:n1].copy()
        di = giT[n0:n1].copy()
        da = gaT[n0:n1].copy()
        accb = np.zeros(n1 - n0, dtype=np.float64)
        acct = np.zeros(n1 - n0, dtype=np.float64)
        for t in range(T - 1, -1, -1):
            for j in range(n1 - n0):
                n = n0 + j
                d_v = dv[j]
                if gv_mode == 0:
                    d_v = d_v + gv[t, n]
                elif gv_mode == 1:
                    d_v = d_v + gv_all
                if gs_mode == 0:
                    g_s = gs[t, n]
                else:
                    g_s = gs_all
                if kind == LI:
                    dh = d_v + g_s
                else:
                    ht = h[t, n]
                    th = thr[n * ts]
                    ds = g_s
                    da_prev = zero
                    if kind == ALIF:
                        th = th + gm * asave[t, n]
                        ds = ds + crho * da[j]
                        da_prev = rho * da[j]
                    z = ht - th
                    s = one if z >= zero else zero
                    dth = zero
                    if reset == SUBTRACT:
                        dh = d_v
                        if not detach:
                            ds = ds - th * d_v
                        dth = -(s * d_v)
                    elif reset == HARD:
                        dh = d_v * (one - s)
                        if not detach:
                            ds = ds + (vr - ht) * d_v
                    else:
                        dh = d_v
                    dz = ds * surrogate_grad(sid, z, k0, k1, k2, one, zero)
                    dh = dh + dz
                    dth = dth - dz
                    if kind == ALIF:
                        da[j] = da_prev + gm * dth
                    if want_thr:
                        acct[j] += dth
                dv[j] = beta[n * bs] * dh
                du = c[n * bs] * dh
                if want_beta:
                    if t == 0:
                        vp = v0[n]
                    elif kind == LI:
                        vp = h[t - 1, n]
                    else:
                        hp = h[t - 1, n]
                        tp = thr[n * ts]
                        sp = one if hp - tp >= zero else zero
                        if reset == SUBTRACT:
                            vp = hp - sp * tp
                        elif reset == HARD:
                            vp = hp - sp * (hp - vr)
                        else:
                            vp = hp
                    gb = dh * vp
                    if decay_input:
                        gb = gb - dh * x[t, n]
                    accb[j] += gb
                if kind == CUBA:
                    d_i = di[j] + du
                    gx[t, n] = d_i
                    di[j] = al * d_i
                else:
                    gx[t, n] = du
        for j in range(n1 - n0):
            gv0[n0 + j] = dv[j]
            gi0[n0 + j] = di[j]
            ga0[n0 + j] = da[j]
            gbeta[n0 + j] = accb[j]
            gthr[n0 + j] = acct[j]
