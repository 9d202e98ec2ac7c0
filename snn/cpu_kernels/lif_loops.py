"""Loops for the commonest fused configuration: a binary-spiking LIF or CuBa LIF whose decay,
input scale and threshold are each one value shared by all neurons (learnable or not, as in
PLIF).

:mod:`snn.cpu_kernels.loops` runs every configuration with per-neuron parameter vectors and a
time step made of several short stages (integrate, fire, reset, surrogate, ...), each a pass
over the block's neurons. For this configuration one loop per four time steps (:data:`UNROLL`)
does everything, with the parameters and each neuron's state in registers, in forward, in
the backward's recomputation and in the backward's reverse pass. The forward steps are
emitted as LLVM IR (:func:`_forward_rows`), so that spikes far larger than the caches can be
written with non-temporal stores as the loop goes (:func:`streams`); the reverse steps are
numba loops generated from Python templates, the surrogate inlined (one loop per surrogate;
a second variant also sums the decay's and threshold's gradients when they are wanted). The
arithmetic is the same, operation for operation, as in :mod:`snn.cpu_kernels.loops`, so every
output (spikes, final state, input and parameter gradients) is bit-identical to the staged
loops'; ``tests/cpu_kernels/test_lif_loops.py`` compares them bitwise.
``benchmarks/profile_neurons_cpu.py`` times both.

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
B*N=524288, float32 on one core, 2048-32768 took 56-61 ms, within the noise of each other
(medians of 9 interleaved calls)."""


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


def streams(nbytes: int) -> bool:
    """Whether the forward's spikes, an output of ``nbytes``, are written with
    non-temporal (streaming) stores.

    An ordinary store first reads the line it writes (a read for ownership), so a pass that
    reads ``x`` and writes an output of its size moves three bytes through memory for every
    two it needs. A non-temporal store writes whole lines without reading them and without
    keeping them in cache, as glibc's ``memcpy`` does for large copies. That is a gain for
    outputs far larger than the caches, which the next operation reads from memory anyway;
    smaller ones keep ordinary stores, so that their consumer finds them in cache.
    :func:`_emit_steps` issues each streaming store right after the loads of the same neurons, so
    that reading ``x`` and writing the spikes overlap as in ``memcpy``: computing a chunk of
    steps into a small buffer first and streaming it out afterwards (the previous design)
    took about 1.4x as long at T=256, B*N=524288 on one core.
    ``benchmarks/profile_neurons_cpu.py`` times the forward.

    Only the forward's spikes are streamed: the backward's input gradient is written by the
    per-surrogate reverse loops, which numba compiles from Python and whose vectorised stores
    cannot be made non-temporal (staging them through a buffer measured slower). Little is
    lost there: at T=256, B*N=524288, float32 on one core, a backward that wrote its input
    gradient into a small reused buffer instead of memory took 132 against 143 ms (medians
    of 9 interleaved calls); the reverse pass is bound by its arithmetic (the surrogate's
    division, in 256-bit vectors), not by the stores."""
    return nbytes >= STREAM_BYTES


def _splat(builder: ir.IRBuilder, ty: ir.Type, value: ir.Value) -> ir.Value:
    """``value`` in every lane of the vector type ``ty`` (``value`` itself for a scalar)."""
    if not isinstance(ty, ir.VectorType):
        return value
    i32 = ir.IntType(32)
    one = builder.insert_element(ir.Constant(ty, ir.Undefined), value, i32(0))
    return builder.shuffle_vector(one, ir.Constant(ty, ir.Undefined),
                                  ir.Constant(ir.VectorType(i32, ty.count), [0] * ty.count))


def _emit_steps(builder: ir.IRBuilder, ty: ir.Type, js: list[ir.Value], xs: list[ir.Value],
                vp: ir.Value, cp: ir.Value, outs: list[ir.Value], consts: tuple[ir.Value, ...],
                size: int, cuba: bool, reset: int, keep_h: bool, stream: bool) -> None:
    """``len(xs)`` forward steps of the neurons at each index in ``js`` (one neuron each, or
    a vector of them when ``ty`` is a vector type), the state carried in registers from step
    to step, the groups of ``js`` interleaved operation by operation (independent chains for
    the out-of-order core): the arithmetic of :mod:`snn.cpu_kernels.loops`, operation for
    operation (``fmul`` and ``fadd`` without contraction, as numba compiles
    ``beta * v + c * x``). Stores to ``outs`` are non-temporal when ``stream`` (vectors
    only; the caller has aligned them)."""
    beta, c, th, al, vr, one, zero = (_splat(builder, ty, k) for k in consts)
    vector = isinstance(ty, ir.VectorType)
    flag = builder.module.add_metadata([ir.IntType(32)(1)])

    def at(p: ir.Value) -> list[ir.Value]:
        return [builder.bitcast(builder.gep(p, [j]), ty.as_pointer()) for j in js]

    def each(f: Callable[..., ir.Value], *columns: list[ir.Value]) -> list[ir.Value]:
        return [f(*row) for row in zip(*columns)]

    def load(p: ir.Value) -> list[ir.Value]:
        return [builder.load(q, align=size) for q in at(p)]

    v = load(vp)
    i = load(cp) if cuba else []
    for xp, op in zip(xs, outs):
        x = load(xp)
        if cuba:
            i = each(lambda i_, x_: builder.fadd(builder.fmul(al, i_), x_), i, x)
            x = i
        h = each(lambda v_, x_: builder.fadd(builder.fmul(beta, v_), builder.fmul(c, x_)), v, x)
        s = each(lambda h_: builder.select(
            builder.fcmp_ordered(">=", builder.fsub(h_, th), zero), one, zero), h)
        for q, value in zip(at(op), h if keep_h else s):
            if stream and vector:
                builder.store(value, q, align=64).set_metadata("nontemporal", flag)
            else:
                builder.store(value, q, align=size)
        if reset == SUBTRACT:
            v = each(lambda h_, s_: builder.fsub(h_, builder.fmul(s_, th)), h, s)
        elif reset == HARD:
            v = each(lambda h_, s_: builder.fsub(h_, builder.fmul(s_, builder.fsub(h_, vr))),
                     h, s)
        else:
            v = h
    for q, value in zip(at(vp), v):
        builder.store(value, q, align=size)
    for q, value in zip(at(cp) if cuba else [], i):
        builder.store(value, q, align=size)


def _type_rows(rows: int, args: tuple[types.Type, ...]) -> Any:
    """Typing and code generation of :func:`_forward_rows` ``(rows)``."""
    arrays = args[:2 * rows + 2]
    dtype = arrays[0].dtype if isinstance(arrays[0], types.Array) else None
    if dtype not in (types.float32, types.float64) or any(
            not isinstance(a, types.Array) or a.ndim != 1 or a.layout != "C"
            or a.dtype != dtype for a in arrays):
        return None

    def codegen(context, builder, signature, values):
        tys = signature.args
        data = [context.make_array(tys[k])(context, builder, values[k]).data
                for k in range(len(arrays))]
        xs, vp, cp, outs = data[:rows], data[rows], data[rows + 1], data[rows + 2:]
        n = builder.extract_value(
            context.make_array(tys[rows])(context, builder, values[rows]).shape, 0)
        first = 2 * rows + 2
        arg = dict(zip(("cuba", "beta", "c", "th", "al", "vr", "reset", "keep_h", "one",
                        "zero", "stream"), range(first, len(tys))))

        def cast(name: str, to: types.Type) -> ir.Value:
            return context.cast(builder, values[arg[name]], tys[arg[name]], to)

        consts = tuple(cast(k, dtype) for k in ("beta", "c", "th", "al", "vr", "one", "zero"))
        fty = xs[0].type.pointee
        size = context.get_abi_sizeof(fty)
        vec = ir.VectorType(fty, 64 // size)
        i64 = ir.IntType(64)
        # streaming stores need every row's vectors on 64-byte boundaries: rows that share
        # their offset from one, starting on an element boundary
        skew = builder.urem(builder.ptrtoint(outs[0], i64), i64(64))
        aligned = builder.icmp_unsigned("==", builder.urem(skew, i64(size)), i64(0))
        for op in outs[1:]:
            same = builder.icmp_unsigned("==", builder.urem(builder.ptrtoint(op, i64), i64(64)),
                                         skew)
            aligned = builder.and_(aligned, same)
        head = builder.udiv(builder.urem(builder.sub(i64(64), skew), i64(64)), i64(size))
        head = builder.select(builder.icmp_signed("<", head, n), head, n)
        head = builder.select(aligned, head, i64(0))
        width = i64(vec.count)
        npair = builder.udiv(builder.sub(n, head), i64(2 * vec.count))
        paired = builder.add(head, builder.mul(npair, i64(2 * vec.count)))
        nvec = builder.udiv(builder.sub(n, paired), width)  # 0 or 1
        done = builder.add(paired, builder.mul(nvec, width))

        def loops(cuba: bool, reset: int, keep_h: bool, stream: bool) -> None:
            step = (xs, vp, cp, outs, consts, size, cuba, reset, keep_h)
            with cgutils.for_range_slice(builder, i64(0), head, i64(1)) as (j, _):
                _emit_steps(builder, fty, [j], *step, False)
            with cgutils.for_range(builder, npair) as loop:  # two vectors per iteration
                j = builder.add(head, builder.mul(loop.index, i64(2 * vec.count)))
                _emit_steps(builder, vec, [j, builder.add(j, width)], *step, stream)
            with cgutils.for_range_slice(builder, paired, done, width) as (j, _):
                _emit_steps(builder, vec, [j], *step, stream)
            with cgutils.for_range_slice(builder, done, n, i64(1)) as (j, _):
                _emit_steps(builder, fty, [j], *step, False)

        def branch(cond: ir.Value, then: Callable[[], None], other: Callable[[], None]) -> None:
            with builder.if_else(cond) as (yes, no):
                with yes:
                    then()
                with no:
                    other()

        def stores(cuba: bool, reset: int) -> None:
            stream = builder.and_(cast("stream", types.boolean), aligned)
            branch(cast("keep_h", types.boolean), lambda: loops(cuba, reset, True, False),
                   lambda: branch(stream, lambda: loops(cuba, reset, False, True),
                                  lambda: loops(cuba, reset, False, False)))

        def resets(cuba: bool) -> None:
            kind = cast("reset", types.int64)
            branch(builder.icmp_signed("==", kind, i64(SUBTRACT)), lambda: stores(cuba, SUBTRACT),
                   lambda: branch(builder.icmp_signed("==", kind, i64(HARD)),
                                  lambda: stores(cuba, HARD), lambda: stores(cuba, -1)))

        branch(cast("cuba", types.boolean), lambda: resets(True), lambda: resets(False))
        return context.get_dummy_value()

    return types.void(*args), codegen


def _forward_rows(rows: int) -> Any:
    """The intrinsic ``f(x0, ..., v, cur, o0, ..., cuba, beta, c, th, al, vr, reset, keep_h,
    one, zero, stream)``: ``rows`` forward time steps of a block's neurons, step ``k``
    reading the row ``xk`` and writing the row ``ok`` (1-D contiguous rows of one float
    type): the spikes, or the pre-reset membranes when ``keep_h`` (the backward's
    recomputation). ``v`` (and ``cur`` when ``cuba``) hold the state before and after. An
    output row may be its input row.

    Emitted as LLVM IR rather than compiled from Python so that the spikes can be written
    with non-temporal stores (:func:`streams`) as the loop goes: scalar steps up to the
    outputs' first 64-byte boundary, one 64-byte vector of neurons per iteration, scalar
    steps for the rest. Streaming needs every output row at the same offset from a 64-byte
    boundary (else ordinary stores are used). One copy of the loop is emitted for each
    LIF/CuBa x reset x kind of store, chosen once per call. With ``stream``, :func:`_fence`
    must follow a worker's last call."""
    names = [f"x{k}" for k in range(rows)] + ["v", "cur"] + [f"o{k}" for k in range(rows)]
    names += ["cuba", "beta", "c", "th", "al", "vr", "reset", "keep_h", "one", "zero",
              "stream"]
    source = (f"def rows{rows}(typingctx, {', '.join(names)}):\n"
              f"    return _type_rows({rows}, ({', '.join(names)},))\n")
    namespace: dict[str, Any] = {"_type_rows": _type_rows}
    exec(compile(source, f"<{__name__} rows{rows}>", "exec"), namespace)
    return intrinsic(namespace[f"rows{rows}"])


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
took about 23% less time than with one step per pass, and the streamed forward 59 against
88 ms (one step per pass: 68-77 ms; ``benchmarks/profile_neurons_cpu.py``)."""


_row1 = _forward_rows(1)
_row4 = _forward_rows(UNROLL)


@njit(cache=True, nogil=True, error_model="numpy")
def _block(x, n0, n1, v0, i0, v, cur, out, o0, cuba, beta, c, th, al, vr, reset, keep_h,
           stream, one, zero):  # pragma: no cover - compiled
    """The forward recurrence of neurons ``n0:n1`` from their initial state, every step's
    spikes (pre-reset membranes when ``keep_h``) into ``out[t, o0:o0 + n1 - n0]`` (``out``
    may be ``x`` itself), :data:`UNROLL` steps per pass. Leaves the final state in
    ``v[:m]``/``cur[:m]``."""
    m = n1 - n0
    o1 = o0 + m
    vb = v[:m]
    ib = cur[:m]
    vb[:] = v0[n0:n1]
    ib[:] = i0[n0:n1]
    T = x.shape[0]
    T4 = T - T % UNROLL
    for t in range(0, T4, UNROLL):
        _row4(x[t, n0:n1], x[t + 1, n0:n1], x[t + 2, n0:n1], x[t + 3, n0:n1], vb, ib,
              out[t, o0:o1], out[t + 1, o0:o1], out[t + 2, o0:o1], out[t + 3, o0:o1], cuba,
              beta, c, th, al, vr, reset, keep_h, one, zero, stream)
    for t in range(T4, T):
        _row1(x[t, n0:n1], vb, ib, out[t, o0:o1], cuba, beta, c, th, al, vr, reset, keep_h,
              one, zero, stream)


@njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def forward(x, v0, i0, beta, c, thr, p, kind, reset, blk, workers, spikes, vT, iT,
            stream):  # pragma: no cover - compiled
    """Forward over ``x`` ``[T, N]``: the spikes (``spikes`` may be ``x`` itself) and the
    final membrane (and current for CuBa), in blocks of ``blk`` neurons. ``beta``/``c``/
    ``thr`` hold one value each (``[1]``). ``stream``: write the spikes with non-temporal
    stores (:func:`streams`)."""
    N = x.shape[1]
    one, zero, b0, c0, th, al, vr = _scalars(beta, c, thr, p)
    cuba = kind == CUBA
    nblk = (N + blk - 1) // blk
    workers = max(1, min(workers, nblk))
    for w in prange(workers):
        v = np.empty(blk, x.dtype)
        cur = np.empty(blk, x.dtype)
        for b in range(w, nblk, workers):
            n0 = b * blk
            n1 = min(N, n0 + blk)
            _block(x, n0, n1, v0, i0, v, cur, spikes, n0, cuba, b0, c0, th, al, vr, reset,
                   False, stream, one, zero)
            vT[n0:n1] = v[:n1 - n0]
            iT[n0:n1] = cur[:n1 - n0]
        if stream:
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
                _block(x, n0, n1, v0, i0, v, cur, hl, 0, cuba, b0, c0, th, al, vr, reset, True,
                       False, one, zero)
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
