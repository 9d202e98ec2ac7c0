"""Large outputs of the CPU kernels reuse the memory of freed outputs, never of live ones,
and keep at most the idle limit."""

from __future__ import annotations

import gc
import resource

import pytest
import torch

from snn.cpu_kernels import pool

SHAPE = (8, pool.MIN_BYTES // 4 // 8)  # float32: exactly MIN_BYTES


@pytest.fixture(autouse=True)
def _empty_pool():
    pool.release()
    yield
    pool.release()


def test_small_outputs_are_left_to_malloc():
    assert pool.take((4, 1024), torch.float32) is None


def test_a_freed_output_is_reused_without_faulting_its_pages_again():
    t = pool.take(SHAPE, torch.float32)
    assert t.shape == SHAPE and t.dtype == torch.float32 and t.is_contiguous()
    t.fill_(1.0)
    ptr = t.data_ptr()
    del t
    gc.collect()
    assert pool.idle_bytes() == pool.MIN_BYTES
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    u = pool.take(SHAPE, torch.float32)
    u.fill_(2.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert u.data_ptr() == ptr and pool.idle_bytes() == 0
    assert faults < 64, f"{faults} page faults writing recycled memory"


def test_memory_still_held_by_a_view_or_the_autograd_graph_is_not_reused():
    t = pool.take(SHAPE, torch.float32).fill_(1.0)
    view = t[1:3]
    w = torch.ones((), requires_grad=True)
    graph = (t * w).sum()  # the graph saves t
    ptr = t.data_ptr()
    del t
    gc.collect()
    u = pool.take(SHAPE, torch.float32)
    assert u.data_ptr() != ptr and float(view.sum()) == 2 * SHAPE[1]
    graph.backward()
    assert float(w.grad) == SHAPE[0] * SHAPE[1]


def test_a_buffer_of_another_size_is_not_handed_out():
    t = pool.take(SHAPE, torch.float32)
    ptr = t.data_ptr()
    del t
    gc.collect()
    other = pool.take((SHAPE[0] + 1, SHAPE[1]), torch.float32)
    assert other.data_ptr() != ptr and pool.idle_bytes() == pool.MIN_BYTES
    same_bytes = pool.take((SHAPE[0] // 2, SHAPE[1]), torch.float64)  # reused
    assert same_bytes.data_ptr() == ptr and same_bytes.shape == (SHAPE[0] // 2, SHAPE[1])
    assert pool.idle_bytes() == 0


def test_idle_memory_stays_within_the_limit_oldest_released_first(monkeypatch):
    monkeypatch.setattr(pool, "idle_limit", lambda: 2 * pool.MIN_BYTES)
    ts = [pool.take(SHAPE, torch.float32) for _ in range(3)]
    ptrs = [t.data_ptr() for t in ts]
    for i in range(3):
        ts[i] = None  # freed in this order
    gc.collect()
    assert pool.idle_bytes() == 2 * pool.MIN_BYTES
    again = [pool.take(SHAPE, torch.float32) for _ in range(2)]
    assert {t.data_ptr() for t in again} == set(ptrs[1:])  # the first freed was released
    assert pool.take((4 * SHAPE[0], SHAPE[1]), torch.float32) is None  # above the limit


def test_release_returns_the_idle_bytes():
    pool.take(SHAPE, torch.float32)  # freed at once
    gc.collect()
    assert pool.release() == pool.MIN_BYTES and pool.idle_bytes() == 0


def test_a_training_loop_reuses_the_spikes_and_gradient_of_the_previous_step():
    pytest.importorskip("numba")
    from snn.backends import run_sequence_backend

    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0)).requires_grad_()
    results, ptrs = [], []
    for _ in range(2):
        out = run_sequence_backend("lif", "numba", x, None, False, {"beta": 0.5})
        (out.spikes * 0.5).sum().backward()
        results.append((out.spikes.clone(), x.grad.clone()))
        ptrs.append({out.spikes.data_ptr(), x.grad.data_ptr()})
        del out
        x.grad = None
        gc.collect()
    assert ptrs[0] == ptrs[1]
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_buffers_of_each_size_are_reused_oldest_first_and_counted():
    pool.release()
    small, large = SHAPE, (2 * SHAPE[0], SHAPE[1])
    ts = [pool.take(s, torch.float32) for s in (small, large, small)]
    ptrs = [t.data_ptr() for t in ts]
    for i in range(3):
        ts[i] = None  # freed in this order
    gc.collect()
    assert pool.idle_bytes() == 4 * pool.MIN_BYTES
    assert pool.take(small, torch.float32).data_ptr() == ptrs[0]  # freed (and taken) at once
    gc.collect()
    first = pool.take(small, torch.float32)
    second = pool.take(small, torch.float32)
    assert {first.data_ptr(), second.data_ptr()} == {ptrs[0], ptrs[2]}
    big = pool.take(large, torch.float32)
    assert big.data_ptr() == ptrs[1]
    assert pool.idle_bytes() == 0


def test_other_dtypes_are_left_to_torch():
    for dtype in (torch.float16, torch.bfloat16, torch.int32):
        assert pool.take(SHAPE, dtype) is None


def test_zero_states_over_recycled_memory_are_zeros():
    """An all-zero initial state or final-state gradient of 1 MiB or more comes from the pool
    (over the memory of a freed output, which held other values) and is all zeros."""
    from snn.fused.autograd import _or_zeros

    n = pool.MIN_BYTES // 4
    dirty = pool.take((n,), torch.float32)
    dirty.fill_(7.0)
    ptr = dirty.data_ptr()
    del dirty
    gc.collect()
    zeros = _or_zeros(torch.empty(0), n)
    assert zeros.data_ptr() == ptr  # the freed buffer, reused
    assert zeros.shape == (n,) and zeros.dtype == torch.float32
    assert not zeros.any()
    assert _or_zeros(torch.empty(0, dtype=torch.float16), n).dtype == torch.float16
    given = torch.ones(3)
    assert _or_zeros(given, 3) is given


def test_per_neuron_vectors_of_a_wide_layer_are_reused(monkeypatch):
    """With N >= MIN_BYTES / 4 float32 neurons, the per-neuron vectors of a step (initial
    states, final states, their gradients) all come from memory the previous step freed."""
    pytest.importorskip("numba")
    from snn.backends import run_sequence_backend

    n = pool.MIN_BYTES // 4
    x = torch.randn(2, 1, n, generator=torch.Generator().manual_seed(1)).requires_grad_()
    requests: list[bool] = []
    reuse = pool._reuse

    def spy(nbytes: int):
        found = reuse(nbytes)
        if nbytes == n * 4:
            requests.append(found is not None)
        return found

    monkeypatch.setattr(pool, "_reuse", spy)
    results = []
    for _ in range(2):
        requests.clear()
        out = run_sequence_backend("lif", "numba", x, None, False, {"beta": 0.5})
        (out.spikes.sum() + out.state.v.sum()).backward()
        results.append((out.state.v.clone(), x.grad.clone()))
        del out
        x.grad = None
        gc.collect()
    assert len(requests) >= 6 and all(requests), requests  # the second step: all reused
    for a, b in zip(*results):
        assert torch.equal(a, b)
