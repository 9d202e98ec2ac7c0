"""Numba loops of the fused CPU path: one pass over time forward, one pass backward.

The arithmetic is the same, operation for operation, as :mod:`snn.functional` (and as
``snn/cuda_kernels/neuron.cuh``): every value is computed in the input's dtype with the same
rounding order, no fused multiply-add and no fast-math, so float32 spikes and membranes are
bit-identical to the PyTorch reference.

Work is split over blocks of neurons (``prange``). Inside a block the loop runs over time;
each time step is a short sequence of *stages*, each a branch-free loop over the block's
neurons (the configuration branches sit outside the loops; the binary spike rule integrates,
fires and resets in one loop per reset), so that LLVM vectorises them and
the block's state and temporaries stay in cache while ``x`` and the spikes stream through
memory in contiguous runs.

Forward keeps nothing for backward but its input. Backward, block by block, first re-runs the
forward recurrence of the block (bit-identical arithmetic) into a block-local buffer of
pre-reset membranes ``h`` sized to stay in cache, then runs the reverse pass over it. Compared
with saving ``h`` in forward this moves fewer bytes through memory (``x`` is read twice,
``h`` is never written to or read from main memory) and allocates no ``[T, N]`` buffer.

Division follows IEEE semantics (``error_model="numpy"``: no Python zero-division check,
which would also stop LLVM from vectorising the surrogate loops). Constants arrive in a small
array ``p`` of the input's dtype (index names ``P_*``) so that no
float64 literal promotes the float32 arithmetic.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit, prange

__all__ = ["BLOCK", "KERNEL_IDS", "backward", "backward_block", "forward", "surrogate_grad"]

BLOCK = 1024
"""Neurons per parallel work item."""

P_ONE, P_ZERO, P_VRESET, P_ALPHA, P_RHO, P_CRHO, P_GAMMA, P_K0, P_K1, P_K2, P_LEVELS = range(11)
N_CONST = 11

# the codes of snn.fused.description (and of neuron.cuh)
LIF, LI, CUBA, ALIF = 0, 1, 2, 3
BINARY, MULTILEVEL, TERNARY = 0, 1, 2
SUBTRACT, HARD, NONE = 0, 1, 2


@njit(cache=True, nogil=True, error_model="numpy")
def _fire(fire, hb, thb, sb, levels, one, zero):  # pragma: no cover - compiled
    """Spikes ``sb`` of the pre-reset membranes ``hb`` at thresholds ``thb`` (the spike
    rules of :mod:`snn.fused.description`)."""
    m = hb.shape[0]
    if fire == MULTILEVEL:
        for j in range(m):
            q = hb[j] / thb[j]
            q = zero if q < zero else (levels if q > levels else q)
            sb[j] = np.rint(q)
    elif fire == TERNARY:
        for j in range(m):
            p = one if hb[j] - thb[j] >= zero else zero
            n = one if (-hb[j]) - thb[j] >= zero else zero
            sb[j] = p - n
    else:
        for j in range(m):
            sb[j] = one if hb[j] - thb[j] >= zero else zero


@njit(cache=True, nogil=True, error_model="numpy")
def _gather(dst, src, n0, stride):  # pragma: no cover - compiled
    """``dst[j] = src[(n0 + j) * stride]``: a per-neuron vector (stride 1) or a scalar
    (stride 0) as a block-local array."""
    for j in range(dst.shape[0]):
        dst[j] = src[(n0 + j) * stride]


def _kernel_surrogates() -> list[tuple[int, Callable[..., Any]]]:
    """``(kernel_id, kernel)`` of every registered surrogate with a kernel derivative."""
    from snn.surrogate import SURROGATES

    return sorted((cls.kernel_id, cls.kernel) for cls in SURROGATES.values()
                  if cls.kernel_id >= 0)


def _code_key(fn: Callable[..., Any]) -> tuple[Any, ...]:
    code = fn.__code__
    consts = tuple(c.co_code if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.co_code, consts, code.co_names


def _build_surrogate_grad(kernels: list[tuple[int, Callable[..., Any]]]
                          ) -> tuple[Any, str]:
    """The numba function ``surrogate_grad(sid, z, out, k0, k1, k2, one, zero)``:
    ``out[j] = g'(z[j])`` for the surrogate of ``kernel_id`` ``sid``, one branch per
    surrogate around its own loop (so each loop vectorises), each calling the surrogate
    class's :meth:`~snn.surrogate.Surrogate.kernel` inlined. Also returns a key of the
    kernels' code: :func:`backward` is cached under it, so a changed or added surrogate
    recompiles it."""
    lines = ["def surrogate_grad(sid, z, out, k0, k1, k2, one, zero):", "    m = z.shape[0]"]
    namespace: dict[str, Any] = {}
    for n, (kid, kernel) in enumerate(kernels):
        lines += [f"    {'if' if n == 0 else 'elif'} sid == {kid}:",
                  "        for j in range(m):",
                  f"            out[j] = _kernel_{kid}(z[j], k0, k1, k2, one, zero)"]
        namespace[f"_kernel_{kid}"] = njit(nogil=True, error_model="numpy",
                                           inline="always")(kernel)
    lines += ["    else:" if kernels else "    if True:", "        for j in range(m):",
              "            out[j] = zero"]
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<{__name__} surrogate_grad>", "exec"), namespace)
    key = hashlib.sha256(repr((source, [(k, _code_key(f)) for k, f in kernels])).encode())
    return njit(nogil=True, error_model="numpy")(namespace["surrogate_grad"]), key.hexdigest()


KERNEL_IDS = frozenset(kid for kid, _ in _kernel_surrogates())
"""The surrogate ``kernel_id`` values compiled into :func:`backward` (those registered when
this module was imported)."""

surrogate_grad, SURROGATE_KEY = _build_surrogate_grad(_kernel_surrogates())


def backward_block(T: int) -> int:
    """Neurons per backward work item: the block-local ``h`` buffer ``[T, block]`` (float32)
    stays within about 512 KiB (a multiple of 32 between 32 and ``BLOCK``)."""
    return max(32, min(BLOCK, (131072 // max(T, 1)) // 32 * 32))


@njit(cache=True, nogil=True, error_model="numpy")
def _step(xt, v, cur, a, bb, cb, tb, thb, hb, sb, p, kind, reset, fire):  # pragma: no cover
    """One time step of a block: updates the state ``v``/``cur``/``a`` in place and leaves the
    pre-reset membrane in ``hb``, the threshold in ``thb`` (ALIF) and the spikes in ``sb``
    (the membrane for LI)."""
    one = p[P_ONE]
    zero = p[P_ZERO]
    m = v.shape[0]
    if kind == CUBA:
        al = p[P_ALPHA]
        for j in range(m):
            cur[j] = al * cur[j] + xt[j]
    if kind == LI:
        for j in range(m):
            h = bb[j] * v[j] + cb[j] * xt[j]
            hb[j] = h
            v[j] = h
            sb[j] = h
        return
    if kind == ALIF:
        gm = p[P_GAMMA]
        for j in range(m):
            thb[j] = tb[j] + gm * a[j]
    vr = p[P_VRESET]
    if fire == BINARY:
        # integration, spike and reset in one loop (the same operations in the same order)
        if kind == CUBA:
            _binary_step(cur, v, bb, cb, thb, hb, sb, reset, vr, one, zero)
        else:
            _binary_step(xt, v, bb, cb, thb, hb, sb, reset, vr, one, zero)
    else:
        if kind == CUBA:
            _integrate(cur, v, bb, cb, hb)
        else:
            _integrate(xt, v, bb, cb, hb)
        _fire_and_reset(v, thb, hb, sb, p, reset, fire, one, zero)
    if kind == ALIF:
        rho = p[P_RHO]
        crho = p[P_CRHO]
        for j in range(m):
            a[j] = rho * a[j] + crho * sb[j]


@njit(cache=True, nogil=True, error_model="numpy")
def _integrate(inp, v, bb, cb, hb):  # pragma: no cover - compiled
    """Pre-reset membranes ``hb = bb * v + cb * inp``."""
    for j in range(v.shape[0]):
        hb[j] = bb[j] * v[j] + cb[j] * inp[j]


@njit(cache=True, nogil=True, error_model="numpy")
def _fire_and_reset(v, thb, hb, sb, p, reset, fire, one, zero):  # pragma: no cover
    """Spikes ``sb`` of the pre-reset membranes ``hb`` and the reset of ``v``, stage by
    stage (the multi-level and ternary rules)."""
    m = v.shape[0]
    _fire(fire, hb, thb, sb, p[P_LEVELS], one, zero)
    if reset == SUBTRACT:
        for j in range(m):
            v[j] = hb[j] - sb[j] * thb[j]
    elif reset == HARD:
        vr = p[P_VRESET]
        if fire == TERNARY:
            for j in range(m):
                v[j] = hb[j] - abs(sb[j]) * (hb[j] - vr)
        else:
            for j in range(m):
                v[j] = hb[j] - sb[j] * (hb[j] - vr)
    else:
        for j in range(m):
            v[j] = hb[j]


@njit(cache=True, nogil=True, error_model="numpy")
def _binary_step(inp, v, bb, cb, thb, hb, sb, reset, vr, one, zero):  # pragma: no cover
    """One step of the binary spike rule in one loop per reset: ``hb = bb * v + cb * inp``,
    the spikes ``sb`` and the reset of ``v``."""
    m = v.shape[0]
    if reset == SUBTRACT:
        for j in range(m):
            h = bb[j] * v[j] + cb[j] * inp[j]
            hb[j] = h
            s = one if h - thb[j] >= zero else zero
            sb[j] = s
            v[j] = h - s * thb[j]
    elif reset == HARD:
        for j in range(m):
            h = bb[j] * v[j] + cb[j] * inp[j]
            hb[j] = h
            s = one if h - thb[j] >= zero else zero
            sb[j] = s
            v[j] = h - s * (h - vr)
    else:
        for j in range(m):
            h = bb[j] * v[j] + cb[j] * inp[j]
            hb[j] = h
            s = one if h - thb[j] >= zero else zero
            sb[j] = s
            v[j] = h


@njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def forward(x, v0, i0, a0, beta, c, thr, p, kind, reset, fire, record, workers,
            spikes, vrec, vT, iT, aT, inplace):  # pragma: no cover - compiled
    """Forward over ``x`` ``[T, N]``: spikes (the membrane for LI), the membrane trace when
    ``record``, and the final state. ``beta``/``c``/``thr`` hold one value (``[1]``) or one
    per neuron (``[N]``); ``workers`` parallel work items each take every ``workers``-th
    block. ``inplace``: ``spikes`` is ``x`` itself, and each step's spikes are written over
    it through one array (LLVM's run-time overlap check would otherwise fall back to scalar
    code)."""
    T, N = x.shape
    bs = 1 if beta.shape[0] > 1 else 0
    ts = 1 if thr.shape[0] > 1 else 0
    nblk = (N + BLOCK - 1) // BLOCK
    workers = max(1, min(workers, nblk))
    for w in prange(workers):
        # scratch allocated once per worker, reused for each of its blocks
        v = np.empty(BLOCK, x.dtype)
        cur = np.empty(BLOCK, x.dtype)
        a = np.empty(BLOCK, x.dtype)
        bb = np.empty(BLOCK, x.dtype)
        cb = np.empty(BLOCK, x.dtype)
        tb = np.empty(BLOCK, x.dtype)
        hb = np.empty(BLOCK, x.dtype)
        thb_ = np.empty(BLOCK, x.dtype)
        for b in range(w, nblk, workers):
            n0 = b * BLOCK
            n1 = min(N, n0 + BLOCK)
            m = n1 - n0
            vb = v[:m]
            ib = cur[:m]
            ab = a[:m]
            vb[:] = v0[n0:n1]
            ib[:] = i0[n0:n1]
            ab[:] = a0[n0:n1]
            _gather(bb[:m], beta, n0, bs)
            _gather(cb[:m], c, n0, bs)
            _gather(tb[:m], thr, n0, ts)
            thb = thb_[:m] if kind == ALIF else tb[:m]
            for t in range(T):
                xs = x[t, n0:n1]
                if inplace:
                    _step(xs, vb, ib, ab, bb[:m], cb[:m], tb[:m], thb, hb[:m], xs, p, kind,
                          reset, fire)
                else:
                    _step(xs, vb, ib, ab, bb[:m], cb[:m], tb[:m], thb, hb[:m],
                          spikes[t, n0:n1], p, kind, reset, fire)
                if record:
                    vrec[t, n0:n1] = vb
            vT[n0:n1] = vb
            iT[n0:n1] = ib
            aT[n0:n1] = ab


def _build_backward(surrogate_key: str) -> Any:
    """The fused backward, cached under ``surrogate_key`` (the surrogate kernels it
    compiles in; numba keys the cache of a closure by its variables)."""

    @njit(cache=True, parallel=True, nogil=True, error_model="numpy")
    def backward(x, v0, i0, a0, beta, c, thr, p, kind, reset, fire, detach, sid,
                 gs, gs_mode, gv, gv_mode, gvT, giT, gaT, want_beta, decay_input, want_thr, blk,
                 workers, gx, gv0, gi0, ga0, gbeta, gthr):  # pragma: no cover - compiled
        """Reverse pass over ``[T, N]`` in blocks of ``blk`` neurons, each first recomputing its
        forward membranes. ``gs_mode``/``gv_mode``: 0 a full ``[T, N]`` gradient, 1 one value for
        all (an expanded scalar), 2 none. ``gbeta``/``gthr`` receive per-neuron sums over time
        (float64) when ``want_beta``/``want_thr``, else they are not touched (one element)."""
        if len(surrogate_key) == 0:  # never: the key names the compiled surrogates
            return
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
        k0 = p[P_K0]
        k1 = p[P_K1]
        k2 = p[P_K2]
        levels = p[P_LEVELS]
        gs_all = gs[0, 0] if gs_mode == 1 else zero
        gv_all = gv[0, 0] if gv_mode == 1 else zero
        nblk = (N + blk - 1) // blk
        workers = max(1, min(workers, nblk))
        need_h = kind != LI or want_beta
        for w in prange(workers):
            # scratch allocated once per worker, reused for each of its blocks
            th_ = T if need_h else 1
            ta_ = T if kind == ALIF else 1
            hl_ = np.empty(th_ * blk, x.dtype)
            tl_ = np.empty(ta_ * blk, x.dtype)
            for b in range(w, nblk, workers):
                n0 = b * blk
                n1 = min(N, n0 + blk)
                m = n1 - n0
                bb = np.empty(m, x.dtype)
                cb = np.empty(m, x.dtype)
                tb = np.empty(m, x.dtype)
                _gather(bb, beta, n0, bs)
                _gather(cb, c, n0, bs)
                _gather(tb, thr, n0, ts)
                # 1. the block's forward again: pre-reset membranes (and ALIF thresholds) per step
                hl = hl_[: th_ * m].reshape((th_, m))
                tl = tl_[: ta_ * m].reshape((ta_, m))
                if need_h:
                    v = v0[n0:n1].copy()
                    cur = i0[n0:n1].copy()
                    a = a0[n0:n1].copy()
                    sb = np.empty(m, x.dtype)
                    for t in range(T):
                        thb = tl[t] if kind == ALIF else tb
                        _step(x[t, n0:n1], v, cur, a, bb, cb, tb, thb, hl[t], sb, p, kind, reset,
                              fire)
                # 2. the reverse pass
                dv = gvT[n0:n1].copy()
                di = giT[n0:n1].copy()
                da = gaT[n0:n1].copy()
                accb = np.zeros(m, np.float64)
                acct = np.zeros(m, np.float64)
                dh = np.empty(m, x.dtype)
                ds = np.empty(m, x.dtype)
                dth = np.empty(m, x.dtype)
                z = np.empty(m, x.dtype)
                sg = np.empty(m, x.dtype)
                sg2 = np.empty(m, x.dtype)
                sp_ = np.empty(m, x.dtype)
                dr = np.empty(m, x.dtype)
                vp = np.empty(m, x.dtype)
                for t in range(T - 1, -1, -1):
                    # total gradient reaching v_t: from the future and from the recorded trace
                    if gv_mode == 0:
                        gvt = gv[t, n0:n1]
                        for j in range(m):
                            dv[j] = dv[j] + gvt[j]
                    elif gv_mode == 1:
                        for j in range(m):
                            dv[j] = dv[j] + gv_all
                    if gs_mode == 0:
                        ds[:] = gs[t, n0:n1]
                    else:
                        ds[:] = gs_all
                    if kind == LI:
                        for j in range(m):
                            dh[j] = dv[j] + ds[j]
                    else:
                        ht = hl[t]
                        thb = tb
                        if kind == ALIF:
                            thb = tl[t]
                            for j in range(m):
                                ds[j] = ds[j] + crho * da[j]
                        _fire(fire, ht, thb, sp_, levels, one, zero)
                        if reset == SUBTRACT:
                            for j in range(m):
                                dh[j] = dv[j]
                                dth[j] = -(sp_[j] * dv[j])
                                dr[j] = zero
                            if not detach:
                                for j in range(m):
                                    ds[j] = ds[j] - thb[j] * dv[j]
                        elif reset == HARD:
                            for j in range(m):
                                r = abs(sp_[j]) if fire == TERNARY else sp_[j]
                                dh[j] = dv[j] * (one - r)
                                dth[j] = zero
                                dr[j] = zero if detach else (vr - ht[j]) * dv[j]
                        else:
                            for j in range(m):
                                dh[j] = dv[j]
                                dth[j] = zero
                                dr[j] = zero
                        if fire == MULTILEVEL:
                            # straight-through estimator on 0 <= h / th <= D (Luo et al. 2024)
                            for j in range(m):
                                q = ht[j] / thb[j]
                                dq = ds[j] if q >= zero and q <= levels else zero
                                dh[j] = dh[j] + dq / thb[j]
                                dth[j] = dth[j] - dq * (q / thb[j])
                        elif fire == TERNARY:
                            for j in range(m):
                                z[j] = ht[j] - thb[j]
                            surrogate_grad(sid, z, sg, k0, k1, k2, one, zero)
                            for j in range(m):
                                z[j] = (-ht[j]) - thb[j]
                            surrogate_grad(sid, z, sg2, k0, k1, k2, one, zero)
                            for j in range(m):
                                dpp = (ds[j] + dr[j]) * sg[j]
                                dmm = (dr[j] - ds[j]) * sg2[j]
                                dh[j] = dh[j] + dpp - dmm
                                dth[j] = dth[j] - dpp - dmm
                        else:
                            for j in range(m):
                                z[j] = ht[j] - thb[j]
                            surrogate_grad(sid, z, sg, k0, k1, k2, one, zero)
                            for j in range(m):
                                dz = (ds[j] + dr[j]) * sg[j]
                                dh[j] = dh[j] + dz
                                dth[j] = dth[j] - dz
                        if kind == ALIF:
                            for j in range(m):
                                da[j] = rho * da[j] + gm * dth[j]
                        if want_thr:
                            for j in range(m):
                                acct[j] += dth[j]
                    if want_beta:
                        # v_{t-1}, recomputed from h_{t-1} exactly as the forward computed it
                        if t == 0:
                            vp[:] = v0[n0:n1]
                        elif kind == LI:
                            vp[:] = hl[t - 1]
                        else:
                            hp = hl[t - 1]
                            thp = tl[t - 1] if kind == ALIF else tb  # the threshold at t-1
                            _fire(fire, hp, thp, sp_, levels, one, zero)
                            for j in range(m):
                                if reset == SUBTRACT:
                                    vp[j] = hp[j] - sp_[j] * thp[j]
                                elif reset == HARD:
                                    r = abs(sp_[j]) if fire == TERNARY else sp_[j]
                                    vp[j] = hp[j] - r * (hp[j] - vr)
                                else:
                                    vp[j] = hp[j]
                        for j in range(m):
                            accb[j] += dh[j] * vp[j]
                        if decay_input:
                            xt = x[t, n0:n1]
                            for j in range(m):
                                accb[j] -= dh[j] * xt[j]
                    gxt = gx[t, n0:n1]
                    if kind == CUBA:
                        for j in range(m):
                            di[j] = di[j] + cb[j] * dh[j]
                            gxt[j] = di[j]
                            di[j] = al * di[j]
                    else:
                        for j in range(m):
                            gxt[j] = cb[j] * dh[j]
                    for j in range(m):
                        dv[j] = bb[j] * dh[j]
                gv0[n0:n1] = dv
                gi0[n0:n1] = di
                ga0[n0:n1] = da
                if want_beta:
                    gbeta[n0:n1] = accb
                if want_thr:
                    gthr[n0:n1] = acct

    return backward


backward = _build_backward(SURROGATE_KEY)
