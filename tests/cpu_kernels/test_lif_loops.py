"""The single-loop LIF kernels against the staged loops: bit-identical, for every surrogate,
reset, gradient mode and dtype they take, and taken by the engine where they apply."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

pytest.importorskip("numba", reason="the numba backend needs numba (pip install 'snn[cpu]')")

import snn
from snn.cpu_kernels import lif_loops, loops
from snn.fused.autograd import fused_sequence
from snn.fused.description import get_description
from snn.surrogate import SURROGATES

KERNEL_SURROGATES = sorted(name for name, cls in SURROGATES.items() if cls.kernel_id >= 0)


def _constants(dtype, surrogate: str) -> np.ndarray:
    p = np.zeros(loops.N_CONST, dtype)
    p[loops.P_ONE] = 1.0
    p[loops.P_VRESET] = -0.25
    p[loops.P_ALPHA] = 0.7
    p[loops.P_K0], p[loops.P_K1], p[loops.P_K2] = SURROGATES[surrogate]().kernel_constants()
    return p


def _run_both(kind, reset, detach, surrogate, gs_mode, dtype, sums=(False, False, False), T=7,
              N=lif_loops.FORWARD_BLOCK + 33, workers=2, blk=64):
    """Forward and backward of the staged loops and of the LIF loops on one input;
    ``sums``: ``(want_beta, decay_input, want_thr)``."""
    rng = np.random.default_rng([kind, reset, gs_mode])
    x = (rng.standard_normal((T, N)) * 0.8 + 0.4).astype(dtype)
    v0 = (rng.standard_normal(N) * 0.3).astype(dtype)
    i0 = (rng.standard_normal(N) * 0.3).astype(dtype)
    a0 = np.zeros(N, dtype)
    beta, c, thr = (np.array([v], dtype) for v in (0.8, 0.9, 0.6))
    p = _constants(dtype, surrogate)
    sid = SURROGATES[surrogate].kernel_id
    gs = {0: rng.standard_normal((T, N)).astype(dtype), 1: np.full((1, 1), 0.5, dtype),
          2: np.zeros((1, 1), dtype)}[gs_mode]
    gvT, giT = rng.standard_normal(N).astype(dtype), rng.standard_normal(N).astype(dtype)
    gaT = np.zeros(N, dtype)
    staged, fused = {}, {}
    for out in (staged, fused):
        out.update(s=np.full((T, N), np.nan, dtype), vT=np.empty(N, dtype),
                   iT=np.empty(N, dtype), gx=np.full((T, N), np.nan, dtype),
                   gv0=np.empty(N, dtype), gi0=np.empty(N, dtype),
                   gbeta=np.full(N, np.nan), gthr=np.full(N, np.nan))
    loops.forward(x, v0, i0, a0, beta, c, thr, p, kind, reset, loops.BINARY, False, workers,
                  staged["s"], np.empty((1, 1), dtype), staged["vT"], staged["iT"],
                  np.empty(N, dtype), False)
    loops.backward(x, v0, i0, a0, beta, c, thr, p, kind, reset, loops.BINARY, detach, sid, gs,
                   gs_mode, gs[:1, :1], 2, gvT, giT, gaT, *sums, blk, workers,
                   staged["gx"], staged["gv0"], staged["gi0"], np.empty(N, dtype),
                   staged["gbeta"], staged["gthr"])
    lif_loops.forward(x, v0, i0, beta, c, thr, p, kind, reset, 1024, workers, fused["s"],
                      fused["vT"], fused["iT"], False)
    for stream in (False, True):  # the spikes written over the input
        over = x.copy()
        lif_loops.forward(over, v0, i0, beta, c, thr, p, kind, reset, 1024, workers, over,
                          np.empty(N, dtype), np.empty(N, dtype), stream)
        assert over.tobytes() == fused["s"].tobytes(), f"spikes over x differ (stream {stream})"
    lif_loops.backward(x, v0, i0, beta, c, thr, p, kind, reset, detach, sid, gs, gs_mode, gvT,
                       giT, *sums, blk, workers, fused["gx"], fused["gv0"], fused["gi0"],
                       fused["gbeta"], fused["gthr"])
    # the spikes through non-temporal stores, into outputs that start off a 64-byte boundary
    # (offset by one element), so that the scalar head and tail are written too: rows all at
    # that offset (a width of whole 64-byte lines) stream; rows at different offsets (this
    # width) fall back to ordinary stores
    lines = N - N % 16
    for width in (lines, N):
        streamed = np.full(T * width + 1, np.nan, dtype)[1:].reshape(T, width)
        lif_loops.forward(np.ascontiguousarray(x[:, :width]), v0[:width], i0[:width], beta, c,
                          thr, p, kind, reset, 1024, workers, streamed, np.empty(width, dtype),
                          np.empty(width, dtype), True)
        assert streamed.tobytes() == fused["s"][:, :width].tobytes(), (
            f"streamed spikes differ ({width} neurons)")
    if kind != loops.CUBA:  # no current: the staged loops pass the final state through
        staged["iT"], fused["iT"] = i0, fused["iT"] * 0 + i0
    return staged, fused


@pytest.mark.parametrize("surrogate", KERNEL_SURROGATES)
def test_bit_identical_to_the_staged_loops(surrogate):
    configs = itertools.product((loops.LIF, loops.CUBA),
                                (loops.SUBTRACT, loops.HARD, loops.NONE), (False, True),
                                (0, 1, 2))
    sums = [(False, False, False), (True, False, False), (True, True, True),
            (False, False, True)]
    for n, (kind, reset, detach, gs_mode) in enumerate(configs):
        dtype = (np.float32, np.float64)[n % 2]
        # time steps: fewer than one unrolled pass, passes with leftover steps, whole passes
        T = (9, 7, 3, 8, 13)[n % 5]
        staged, fused = _run_both(kind, reset, detach, surrogate, gs_mode, dtype,
                                  sums[(n // 2) % len(sums)], T=T)
        for name in staged:
            assert staged[name].tobytes() == fused[name].tobytes(), (
                f"{name} differs: kind {kind} reset {reset} detach {detach} "
                f"gs_mode {gs_mode} {dtype.__name__} T {T}")
        assert fused["s"].any() and not fused["s"].all()  # the input makes both spike states


def test_applies_only_to_the_configuration_it_covers():
    one, many = np.ones(1), np.ones(5)
    assert lif_loops.applies(loops.LIF, loops.BINARY, one, one, one)
    assert lif_loops.applies(loops.CUBA, loops.BINARY, one, one, one)
    assert not lif_loops.applies(loops.ALIF, loops.BINARY, one, one, one)
    assert not lif_loops.applies(loops.LI, loops.BINARY, one, one, one)
    assert not lif_loops.applies(loops.LIF, loops.MULTILEVEL, one, one, one)
    assert not lif_loops.applies(loops.LIF, loops.TERNARY, one, one, one)
    assert not lif_loops.applies(loops.LIF, loops.BINARY, many, many, one)
    assert not lif_loops.applies(loops.LIF, loops.BINARY, one, one, many)
    assert not lif_loops.applies(loops.LIF, loops.BINARY, one, one, one, record=True)
    assert not lif_loops.applies(loops.LIF, loops.BINARY, one, one, one, gv_mode=0)


def test_backward_block_fits_the_buffer_and_stays_in_bounds():
    assert lif_loops.backward_block(256, 4) * 256 * 4 == lif_loops.BACKWARD_BUFFER
    assert lif_loops.backward_block(300, 4) * 300 * 4 <= lif_loops.BACKWARD_BUFFER
    assert lif_loops.backward_block(256, 8) == lif_loops.backward_block(256, 4) // 2
    assert lif_loops.backward_block(1, 4) == 8192
    assert lif_loops.backward_block(10 ** 6, 8) == 64
    assert all(lif_loops.backward_block(t, 4) % 64 == 0 for t in range(1, 3000, 7))
    # fewer neurons than two full blocks per worker: smaller blocks, none idle
    assert lif_loops.backward_block(256, 4, N=4096, workers=2) == 1024
    assert lif_loops.backward_block(256, 4, N=10 ** 7, workers=2) == 4096
    assert lif_loops.forward_block(10 ** 7, 2) == lif_loops.FORWARD_BLOCK
    assert lif_loops.forward_block(4096, 2) == 1024
    assert lif_loops.forward_block(100, 4) == 64
    for n in (64, 1000, 4096, 65536):
        assert lif_loops.forward_block(n, 2) % 64 == 0


def test_the_engine_takes_them_for_a_shared_decay_and_not_for_a_per_neuron_one(monkeypatch):
    calls = []
    for name in ("forward", "backward"):
        real = getattr(lif_loops, name)
        monkeypatch.setattr(lif_loops, name,
                            lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    x = torch.randn(6, 2, 5, generator=torch.Generator().manual_seed(1)).requires_grad_()
    snn.LIF(beta=0.8, backend="numba")(x).sum().backward()
    assert calls == ["forward", "backward"]
    calls.clear()
    lif = get_description("lif")
    fused_sequence("numba", lif, x, None, False, {"beta": torch.full((5,), 0.8)}
                   ).spikes.sum().backward()
    assert calls == []
    # a recorded trace runs the staged forward; its backward without a trace gradient not
    fused_sequence("numba", lif, x, None, True, {"beta": 0.8}).spikes.sum().backward()
    assert calls == ["backward"]
    calls.clear()
    out = fused_sequence("numba", lif, x, None, True, {"beta": 0.8})
    (out.spikes.sum() + out.v.sum()).backward()
    assert calls == []
    # a learnable shared decay (PLIF) takes them too, and gets the reference's gradient
    plif = snn.ParametricLIF(backend="numba")
    plif(x).sum().backward()
    assert calls == ["forward", "backward"]
    ref = snn.ParametricLIF(backend="torch")
    ref(x).sum().backward()
    assert torch.allclose(plif.w.grad, ref.w.grad, rtol=1e-5)
