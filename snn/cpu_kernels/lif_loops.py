"""Numba loops for the commonest fused configuration: a binary-spiking LIF or CuBa LIF whose
decay, input scale and threshold are each one value shared by all neurons (learnable or not,
as in PLIF).

:mod:`snn.cpu_kernels.loops` runs every configuration with per-neuron parameter vectors and a
time step made of several short stages (integrate, fire, reset, surrogate, ...), each a pass
over the block's neurons. For this configuration one loop per four time steps (:data:`UNROLL`)
does everything, with the parameters and each neuron's state in registers, in forward, in
the backward's recomputation and in the backward's reverse pass (the surrogate inlined into
that loop, one loop per surrogate; a second variant of the loop also sums the decay's and
threshold's gradients when they are wanted). Outputs far larger than the caches are written
with non-temporal stores (:func:`streams`). The arithmetic is the same, operation for
operation, as in :mod:`snn.cpu_kernels.loops`, so every output (spikes, final state, input
and parameter gradients) is bit-identical to the staged loops';
``tests/cpu_kernels/test_lif_loops.py`` compares them bitwise. ``benchmarks/profile_neurons_cpu.py``
times both.

Which calls take these loops is decided by :func:`applies`; the others run the staged loops.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from snn.cpu_kernels.loops import (
    BINARY,
    CUBA,
    HARD,
    LIF,
    P_ALPHA,
    P_K0,
    P_K1,
    P_K2,
    P_ONE,
    P_VRESET,
    P_ZERO,
    SUBTRACT,
    _code_key,
    _kernel_surrogates,
)

__all__ = ["FORWARD_BLOCK", "STREAM_BYTES", "applies", "backward", "backward_block", "forward",
           "forward_block", "streams"]

FORWARD_BLOCK = 8192
"""Most neurons per forward work item: 32 KiB of float32 per time step read and written in
one contiguous run (the hardware prefetchers work within 4 KiB pages; runs of several pages
measured faster than the staged loops' 1024). With the streamed spikes at T=256,
B*N=524288, float32 on one core, 8192 took 74 against 79 ms for 4096 (medians of 11
interleaved calls; 1024-16384 were within 73-80 ms)."""


def _split(limit: int, N: int, workers: int) -> int:
    """At most ``limit`` neurons per work item, fewer where that leaves fewer than two items
    per worker (a multiple of 64, at least 64)."""
    share = -(-N // (2 * max(workers, 1)))
    return max(64, min(limit, -(-share // 64) * 64))


def forward_block(N: int, workers: int) -> int:
    """Neurons per forward work item for ``N`` neurons over ``workers`` threads."""
    return _split(FORWARD_BLOCK, N, workers)


BACKWARD_BUFFER = 2 ** 22
"""Bytes of the backward's block-local membrane buffer: 4 MiB, twice a core's L2 cache on
current x86 servers. Interleaved on one core at T=256, B*N=524288, float32 (``[T, block]``
of 4 MiB is 4096 neurons), 4096 and 8192 neurons per block were 7-14% faster than the
2048 that would fit L2 in three runs: the longer contiguous row each time step reads from
``x`` and writes to the gradient matters more than where the buffer lives."""


def backward_block(T: int, itemsize: int, N: int | None = None, workers: int = 1) -> int:
    """Neurons per backward work item: the block-local buffer ``[T, block]`` of pre-reset
    membranes fills about ``BACKWARD_BUFFER`` bytes, a multiple of 64 between 64 and 8192,
    and fewer where ``N`` neurons would leave a worker idle."""
    cache = max(64, min(8192, (BACKWARD_BUFFER // (max(T, 1) * itemsize)) // 64 * 64))
    return cache if N is None else _split(cache, N, workers)


STREAM_BYTES = 64 * 2 ** 20
"""Outputs of at least this many bytes are written with non-temporal stores (:func:`streams`)."""

STREAM_CHUNK = 512
"""Neurons per staged chunk when streaming: four time steps of them are computed into a
``[4, STREAM_CHUNK]`` buffer that stays in L1, then streamed out row by row."""


def streams(nbytes: int) -> bool:
    """Whether the forward's spikes, an output of ``nbytes``, are written with
    non-temporal (streaming) stores.

    An ordinary store first reads the line it writes (a read for ownership), so a pass that
    reads ``x`` and writes an output of its size moves three bytes through memory for every
    two it needs. A non-temporal store writes whole lines without reading them and without
    keeping them in cache, as glibc's ``memcpy`` does for large copies. That is a gain for
    outputs far larger than the caches, which the next operation reads from memory anyway;
    smaller ones keep ordinary stores, so that their consumer finds them in cache. The loops
    compute four time steps of a chunk into a small buffer and stream it out (the streaming
    store needs whole aligned vectors, which the vectorised loop does not guarantee).
    ``benchmarks/profile_neurons_cpu.py`` times both kinds of store.

    Only the forward's spikes are streamed: the same staging in the backward's reverse loop
    (a chunk loop inside the generated per-surrogate loops) measured 2.7x slower than
    ordinary stores, and was not kept."""
    return nbytes >= STREAM_BYTES


@intrinsic
def _stream(typingctx, dst, src, n):  # pragma: no cover - compiled
    """``dst[:n] = src[:n]`` with 64-byte non-temporal vector stores, and ordinary stores for
    the elements before ``dst``'s first 64-byte boundary and after its last (all of them when
    ``dst`` is not element-aligned, which numpy and torch never produce). ``src`` is a small
    buffer in cache. :func:`_fence` orders the streamed stores before anything that follows."""
    sig = types.void(dst, src, types.intp)

    def codegen(context, builder, signature, args):
        dptr = context.make_array(signature.args[0])(context, builder, args[0]).data
        sptr = context.make_array(signature.args[1])(context, builder, args[1]).data
        n = args[2]
        size = context.get_abi_sizeof(dptr.type.pointee)
        width = max(1, 64 // size)
        vec = ir.VectorType(dptr.type.pointee, width).as_pointer()
        i64 = ir.IntType(64)
        zero, one = i64(0), i64(1)
        addr = builder.ptrtoint(dptr, i64)
        head = builder.udiv(builder.urem(builder.sub(i64(64), builder.urem(addr, i64(64))),
                                         i64(64)), i64(size))
        odd = builder.icmp_unsigned("!=", builder.urem(addr, i64(size)), zero)
        head = builder.select(odd, n, head)
        head = builder.select(builder.icmp_signed("<", head, n), head, n)
        with cgutils.for_range_slice(builder, zero, head, one) as (j, _):
            builder.store(builder.load(builder.gep(sptr, [j])), builder.gep(dptr, [j]))
        nvec = builder.udiv(builder.sub(n, head), i64(width))
        flag = builder.module.add_metadata([ir.IntType(32)(1)])
        with cgutils.for_range(builder, nvec) as loop:
            j = builder.add(head, builder.mul(loop.index, i64(width)))
            value = builder.load(builder.bitcast(builder.gep(sptr, [j]), vec), align=size)
            store = builder.store(value, builder.bitcast(builder.gep(dptr, [j]), vec), align=64)
            store.set_metadata("nontemporal", flag)
        done = builder.add(head, builder.mul(nvec, i64(width)))
        with cgutils.for_range_slice(builder, done, n, one) as (j, _):
            builder.store(builder.load(builder.gep(sptr, [j])), builder.gep(dptr, [j]))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _fence(typingctx):  # pragma: no cover - compiled
    """A full memory fence (``mfence`` on x86): a worker's streamed stores are ordered before
    its work is handed back, as ``memcpy`` ends its streaming loop with a fence."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen


def applies(kind: int, fire: int, beta: np.ndarray, c: np.ndarray, thr: np.ndarray,
            record: bool = False, gv_mode: int = 2) -> bool:
    """Whether a call runs these loops: a LIF or CuBa LIF with the binary spike rule, one
    shared decay/input scale/threshold (learnable or not), and no recorded membrane trace
    (nor a gradient for one)."""
    return (kind in (LIF, CUBA) and fire == BINARY and beta.shape[0] == 1
            and c.shape[0] == 1 and thr.shape[0] == 1 and not record and gv_mode == 2)


@njit(cache=True, nogil=True, error_model="numpy")
def _scalars(beta, c, thr, p):  # pragma: no cover - compiled
    """``(one, zero, decay, input scale, threshold, current decay, reset value)``."""
    return p[P_ONE], p[P_ZERO], beta[0], c[0], thr[0], p[P_ALPHA], p[P_VRESET]


UNROLL = 4
"""Time steps per pass of the forward, recomputation and reverse loops (fixed: the callers
pass four rows): each neuron's state, or its gradient, stays in a register for four steps,
and four rows of each ``[T, N]`` array are read or written in one pass (``T % 4`` leftover
steps run one at a time). Interleaved on one core at T=256, B*N=524288, float32, the backward
took about 23% less time than with one step per pass; the forward was unchanged within the
noise (``benchmarks/profile_neurons_cpu.py``)."""

_STEP = """
def {name}({xs}, v, cur, {outs}, cuba, beta, c, th, al, vr, reset, keep_h, one, zero):
    for j in range(v.shape[0]):
        vv = v[j]
        i = cur[j]
{body}
        v[j] = vv
        if cuba:
            cur[j] = i
"""
"""``steps`` forward steps of a block, step ``k`` reading ``x{k}`` and writing ``o{k}``: the
spikes, or the pre-reset membranes when ``keep_h`` (the backward's recomputation). The
state is carried in registers from step to step."""

_FSTEP = """
        if cuba:
            i = al * i + x{k}[j]
            h = beta * vv + c * i
        else:
            h = beta * vv + c * x{k}[j]
        s = one if h - th >= zero else zero
        if keep_h:
            o{k}[j] = h
        else:
            o{k}[j] = s
        if reset == SUBTRACT:
            vv = h - s * th
        elif reset == HARD:
            vv = h - s * (h - vr)
        else:
            vv = h"""
"""One forward step of one neuron (the arithmetic of :mod:`snn.cpu_kernels.loops`, operation
for operation)."""


def _build_step(steps: int) -> Any:
    """The numba function of ``steps`` forward steps (:data:`_STEP`)."""
    name = f"step{steps}"
    source = (_STEP.replace("{name}", name)
              .replace("{xs}", ", ".join(f"x{k}" for k in range(steps)))
              .replace("{outs}", ", ".join(f"o{k}" for k in range(steps)))
              .replace("{body}", "".join(_FSTEP.replace("{k}", str(k))
                                         for k in range(steps)).strip("\n")))
    namespace: dict[str, Any] = {"SUBTRACT": SUBTRACT, "HARD": HARD}
    exec(compile(source, f"<{__name__} {name}>", "exec"), namespace)
    return njit(nogil=True, error_model="numpy", inline="always")(namespace[name])


_step = _build_step(1)
_step4 = _build_step(UNROLL)


@njit(cache=True, nogil=True, error_model="numpy")
def _block(x, n0, n1, v0, i0, v, cur, out, o0, inplace, stage, cuba, beta, c, th, al, vr,
           reset, keep_h, one, zero):  # pragma: no cover - compiled
    """The forward recurrence of neurons ``n0:n1`` from their initial state, every step's
    spikes (pre-reset membranes when ``keep_h``) into ``out[t, o0:o0 + n1 - n0]``, or over
    ``x`` itself when ``inplace`` (one array for both, so that LLVM vectorises without its
    run-time overlap check, which would fall back to scalar code). With a non-empty
    ``stage`` (``[UNROLL, chunk]``), chunks of four steps are computed into it and streamed
    to ``out`` (:func:`streams`). Leaves the final state in ``v[:m]``/``cur[:m]``."""
    m = n1 - n0
    vb = v[:m]
    ib = cur[:m]
    vb[:] = v0[n0:n1]
    ib[:] = i0[n0:n1]
    T = x.shape[0]
    T4 = T - T % UNROLL
    if inplace:
        for t in range(0, T4, UNROLL):
            xa, xb, xc, xd = x[t, n0:n1], x[t + 1, n0:n1], x[t + 2, n0:n1], x[t + 3, n0:n1]
            _step4(xa, xb, xc, xd, vb, ib, xa, xb, xc, xd, cuba, beta, c, th, al, vr, reset,
                   keep_h, one, zero)
        for t in range(T4, T):
            xs = x[t, n0:n1]
            _step(xs, vb, ib, xs, cuba, beta, c, th, al, vr, reset, keep_h, one, zero)
    else:
        o1 = o0 + m
        if stage.shape[1] > 0:
            k = stage.shape[1]
            for t in range(0, T4, UNROLL):
                for a in range(0, m, k):
                    e = min(m, a + k)
                    q = e - a
                    s0, s1, s2, s3 = stage[0, :q], stage[1, :q], stage[2, :q], stage[3, :q]
                    _step4(x[t, n0 + a:n0 + e], x[t + 1, n0 + a:n0 + e],
                           x[t + 2, n0 + a:n0 + e], x[t + 3, n0 + a:n0 + e], vb[a:e], ib[a:e],
                           s0, s1, s2, s3, cuba, beta, c, th, al, vr, reset, keep_h, one, zero)
                    _stream(out[t, o0 + a:o0 + e], s0, q)
                    _stream(out[t + 1, o0 + a:o0 + e], s1, q)
                    _stream(out[t + 2, o0 + a:o0 + e], s2, q)
                    _stream(out[t + 3, o0 + a:o0 + e], s3, q)
        else:
            for t in range(0, T4, UNROLL):
                _step4(x[t, n0:n1], x[t + 1, n0:n1], x[t + 2, n0:n1], x[t + 3, n0:n1], vb, ib,
                       out[t, o0:o1], out[t + 1, o0:o1], out[t + 2, o0:o1], out[t + 3, o0:o1],
                       cuba, beta, c, th, al, vr, reset, keep_h, one, zero)
        for t in range(T4, T):  # leftover steps, ordinary stores
            _step(x[t, n0:n1], vb, ib, out[t, o0:o1], cuba, beta, c, th, al, vr, reset,
                  keep_h, one, zero)


@njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def forward(x, v0, i0, beta, c, thr, p, kind, reset, blk, workers, spikes, vT, iT,
            inplace, stream):  # pragma: no cover - compiled
    """Forward over ``x`` ``[T, N]``: the spikes and the final membrane (and current for
    CuBa), in blocks of ``blk`` neurons. ``beta``/``c``/``thr`` hold one value each
    (``[1]``). ``inplace``: ``spikes`` is ``x`` itself (see :func:`_block`). ``stream``: write
    the spikes with non-temporal stores (:func:`streams`; not when ``inplace``)."""
    N = x.shape[1]
    one, zero, b0, c0, th, al, vr = _scalars(beta, c, thr, p)
    cuba = kind == CUBA
    nblk = (N + blk - 1) // blk
    workers = max(1, min(workers, nblk))
    streaming = stream and not inplace
    for w in prange(workers):
        v = np.empty(blk, x.dtype)
        cur = np.empty(blk, x.dtype)
        stage = np.empty((UNROLL, STREAM_CHUNK if streaming else 0), x.dtype)
        for b in range(w, nblk, workers):
            n0 = b * blk
            n1 = min(N, n0 + blk)
            _block(x, n0, n1, v0, i0, v, cur, spikes, n0, inplace, stage, cuba, b0, c0, th, al,
                   vr, reset, False, one, zero)
            vT[n0:n1] = v[:n1 - n0]
            iT[n0:n1] = cur[:n1 - n0]
        if streaming:
            _fence()


_HEAD = """
        for j in range(dv.shape[0]):
            h = ht[j]
            d = dv[j]
            g = ds[j]
            s = one if h - th >= zero else zero
            if reset == SUBTRACT:
                dh = d
                dth = -(s * d)
                dr = zero
                if not detach:
                    g = g - th * d
            elif reset == HARD:
                dh = d * (one - s)
                dth = zero
                dr = zero if detach else (vr - h) * d
            else:
                dh = d
                dth = zero
                dr = zero
            dz = (g + dr) * _kernel_{kid}(h - th, k0, k1, k2, one, zero)
            dh = dh + dz"""
"""The reverse step of one neuron up to the membrane's gradient ``dh`` (the threshold's
``dth`` is dead code where the sums are not wanted)."""

_SUMS = """
            dth = dth - dz
            if want_thr:
                acct[j] += dth
            if want_beta:
                if prev_is_h:  # v(t-1) from h(t-1), as the forward computed it
                    hp = prev[j]
                    sp = one if hp - th >= zero else zero
                    if reset == SUBTRACT:
                        vp = hp - sp * th
                    elif reset == HARD:
                        vp = hp - sp * (hp - vr)
                    else:
                        vp = hp
                else:
                    vp = prev[j]
                accb[j] += dh * vp
                if decay_input:
                    accb[j] -= dh * xt[j]"""

_TAIL = """
            if cuba:
                i = di[j] + c * dh
                gxt[j] = i
                di[j] = al * i
            else:
                gxt[j] = c * dh
            dv[j] = beta * dh"""


def _build_reverse(kernels: list[tuple[int, Callable[..., Any]]], name: str, params: str,
                   body: str) -> tuple[Any, str]:
    """The numba function ``name(sid, ...)`` of one reverse time step of a block: ``body``
    once per surrogate (its :meth:`~snn.surrogate.Surrogate.kernel` inlined, one fused loop
    each), and a key of the source and the kernels' code (``backward`` is cached under it)."""
    lines = [f"def {name}(sid, {params}):"]
    namespace: dict[str, Any] = {"SUBTRACT": SUBTRACT, "HARD": HARD}
    for n, (kid, kernel) in enumerate(kernels):
        lines.append(f"    {'if' if n == 0 else 'elif'} sid == {kid}:")
        lines.append(body.replace("{kid}", str(kid)).strip("\n"))
        namespace[f"_kernel_{kid}"] = njit(nogil=True, error_model="numpy",
                                           inline="always")(kernel)
    if not kernels:
        lines.append("    pass")
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<{__name__} {name}>", "exec"), namespace)
    key = hashlib.sha256(repr((source, [(k, _code_key(f)) for k, f in kernels])).encode())
    return njit(nogil=True, error_model="numpy")(namespace[name]), key.hexdigest()


def _unrolled(body: str) -> str:
    """``body`` (one reverse step, a loop over ``j``) made into :data:`UNROLL` steps in one
    loop, latest first: step ``k`` reads rows ``ht{k}``, ``ds{k}``, ``prev{k}``, ``xt{k}``
    (flag ``prev_is_h{k}``) and writes ``gxt{k}``, with the membrane's and current's gradients
    carried in registers from step to step (loaded before the first, stored after the last)."""
    head, rest = body.strip("\n").split("\n", 1)
    steps = []
    for k in range(UNROLL - 1, -1, -1):
        step = rest
        for name in ("ht", "ds", "gxt", "xt", "prev"):
            step = step.replace(f"{name}[j]", f"{name}{k}[j]")
        step = step.replace("prev_is_h", f"prev_is_h{k}")
        step = step.replace("d = dv[j]", "d = dvv").replace("dv[j] = beta * dh", "dvv = beta * dh")
        step = step.replace("di[j] + c * dh", "dii + c * dh").replace("di[j] = al * i",
                                                                    "dii = al * i")
        steps.append(step)
    assert all("dv[j]" not in step and "di[j]" not in step for step in steps)
    return "\n".join([head, "            dvv = dv[j]", "            dii = di[j]", *steps,
                      "            dv[j] = dvv", "            if cuba:",
                      "                di[j] = dii"])


def _rows(name: str) -> str:
    return ", ".join(f"{name}{k}" for k in range(UNROLL))


_COMMON = "ht, dv, di, ds, gxt, cuba, beta, c, th, al, vr, reset, detach, k0, k1, k2, one, zero"
_SUM_ARGS = ", want_beta, want_thr, decay_input, prev, prev_is_h, xt, accb, acct"
_COMMON4 = (f"{_rows('ht')}, dv, di, {_rows('ds')}, {_rows('gxt')}, cuba, beta, c, th, al, vr, "
            "reset, detach, k0, k1, k2, one, zero")
_SUM_ARGS4 = (f", want_beta, want_thr, decay_input, {_rows('prev')}, {_rows('prev_is_h')}, "
              f"{_rows('xt')}, accb, acct")
_reverse, _KEY = _build_reverse(_kernel_surrogates(), "reverse", _COMMON, _HEAD + _TAIL)
_reverse_sums, _KEY_SUMS = _build_reverse(
    _kernel_surrogates(), "reverse_sums", _COMMON + _SUM_ARGS, _HEAD + _SUMS + _TAIL)
_reverse4, _KEY4 = _build_reverse(_kernel_surrogates(), "reverse4", _COMMON4,
                                  _unrolled(_HEAD + _TAIL))
_reverse4_sums, _KEY4_SUMS = _build_reverse(
    _kernel_surrogates(), "reverse4_sums", _COMMON4 + _SUM_ARGS4,
    _unrolled(_HEAD + _SUMS + _TAIL))
REVERSE_KEY = _KEY + _KEY_SUMS + _KEY4 + _KEY4_SUMS


def _build_backward(reverse_key: str) -> Any:
    """The backward, cached under ``reverse_key`` (numba keys a closure's cache by its
    variables, so a changed surrogate recompiles it)."""

    @njit(cache=True, parallel=True, nogil=True, error_model="numpy")
    def backward(x, v0, i0, beta, c, thr, p, kind, reset, detach, sid, gs, gs_mode, gvT, giT,
                 want_beta, decay_input, want_thr, blk, workers, gx, gv0, gi0, gbeta,
                 gthr):  # pragma: no cover - compiled
        """Reverse pass over ``[T, N]`` in blocks of ``blk`` neurons, each first recomputing
        its pre-reset membranes into a block-local ``[T, blk]`` buffer. ``gs_mode``: 0 a
        full ``[T, N]`` spike gradient, 1 one value for all (an expanded scalar), 2 none.
        ``gbeta``/``gthr`` receive per-neuron sums over time (float64) when
        ``want_beta``/``want_thr``, else they are not touched. (``gx`` is written with ordinary
        stores: streaming it measured slower.)"""
        if len(reverse_key) == 0:  # never: the key names the compiled surrogates
            return
        T, N = x.shape
        one, zero, b0, c0, th, al, vr = _scalars(beta, c, thr, p)
        k0 = p[P_K0]
        k1 = p[P_K1]
        k2 = p[P_K2]
        cuba = kind == CUBA
        sums = want_beta or want_thr
        nblk = (N + blk - 1) // blk
        workers = max(1, min(workers, nblk))
        for w in prange(workers):
            hl = np.empty((T, blk), x.dtype)
            nostage = np.empty((UNROLL, 0), x.dtype)  # the membranes stay in cache
            v = np.empty(blk, x.dtype)
            cur = np.empty(blk, x.dtype)
            dv = np.empty(blk, x.dtype)
            di = np.empty(blk, x.dtype)
            gsb = np.empty(blk, x.dtype)  # the expanded scalar gradient as a row
            gsb[:] = gs[0, 0] if gs_mode == 1 else zero
            accb = np.empty(blk, np.float64)
            acct = np.empty(blk, np.float64)
            for b in range(w, nblk, workers):
                n0 = b * blk
                n1 = min(N, n0 + blk)
                m = n1 - n0
                _block(x, n0, n1, v0, i0, v, cur, hl, 0, False, nostage, cuba, b0, c0, th, al,
                       vr, reset, True, one, zero)
                dvb = dv[:m]
                dib = di[:m]
                dvb[:] = gvT[n0:n1]
                dib[:] = giT[n0:n1]
                ab = accb[:m]
                at = acct[:m]
                ab[:] = 0.0
                at[:] = 0.0
                T4 = T - T % UNROLL
                for t in range(T - 1, T4 - 1, -1):
                    gst = gs[t, n0:n1] if gs_mode == 0 else gsb[:m]
                    if sums:
                        prev = hl[t - 1, :m] if t > 0 else v0[n0:n1]
                        _reverse_sums(sid, hl[t, :m], dvb, dib, gst, gx[t, n0:n1], cuba, b0, c0,
                                      th, al, vr, reset, detach, k0, k1, k2, one, zero,
                                      want_beta, want_thr, decay_input, prev, t > 0,
                                      x[t, n0:n1], ab, at)
                    else:
                        _reverse(sid, hl[t, :m], dvb, dib, gst, gx[t, n0:n1], cuba, b0, c0, th,
                                 al, vr, reset, detach, k0, k1, k2, one, zero)
                for t in range(T4 - UNROLL, -1, -UNROLL):
                    h0, h1, h2, h3 = hl[t, :m], hl[t + 1, :m], hl[t + 2, :m], hl[t + 3, :m]
                    if gs_mode == 0:
                        g0, g1 = gs[t, n0:n1], gs[t + 1, n0:n1]
                        g2, g3 = gs[t + 2, n0:n1], gs[t + 3, n0:n1]
                    else:
                        g0 = g1 = g2 = g3 = gsb[:m]
                    o0, o1 = gx[t, n0:n1], gx[t + 1, n0:n1]
                    o2, o3 = gx[t + 2, n0:n1], gx[t + 3, n0:n1]
                    if sums:
                        p0 = hl[t - 1, :m] if t > 0 else v0[n0:n1]
                        _reverse4_sums(sid, h0, h1, h2, h3, dvb, dib, g0, g1, g2, g3, o0, o1, o2,
                                       o3, cuba, b0, c0, th, al, vr, reset, detach, k0, k1,
                                       k2, one, zero, want_beta, want_thr, decay_input, p0, h0,
                                       h1, h2, t > 0, True, True, True, x[t, n0:n1],
                                       x[t + 1, n0:n1], x[t + 2, n0:n1], x[t + 3, n0:n1], ab, at)
                    else:
                        _reverse4(sid, h0, h1, h2, h3, dvb, dib, g0, g1, g2, g3, o0, o1, o2, o3,
                                  cuba, b0, c0, th, al, vr, reset, detach, k0, k1, k2, one, zero)
                gv0[n0:n1] = dvb
                gi0[n0:n1] = dib
                if want_beta:
                    gbeta[n0:n1] = ab
                if want_thr:
                    gthr[n0:n1] = at
    return backward


backward = _build_backward(REVERSE_KEY)
