"""The first call on a cold kernel cache: ``backend="auto"`` runs the reference while the
kernels compile in another process; an explicit ``backend="numba"`` waits for them."""

from __future__ import annotations

import pytest
import torch

from snn import backends
from snn.backends import run_sequence_backend

pytest.importorskip("numba", reason="the numba backend needs numba (pip install 'snn[cpu]')")

from snn.cpu_kernels import warmup


class FakeProcess:
    def __init__(self) -> None:
        self.done = False
        self.waited = False

    def poll(self) -> int | None:
        return 0 if self.done else None

    def wait(self) -> int:
        self.waited = True
        self.done = True
        return 0


@pytest.fixture
def cold(monkeypatch):
    """A cold cache whose warm-up process has not finished."""
    proc = FakeProcess()
    monkeypatch.setattr(warmup, "_STATE", {})
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: False)
    monkeypatch.setattr(warmup, "_start", lambda: proc)
    return proc


def test_auto_runs_the_reference_until_the_kernels_are_compiled(cold, monkeypatch):
    calls = []
    real = backends._load("lif", "engine:numba")
    monkeypatch.setitem(backends._LOADED, ("lif", "engine:numba"), _counting(real, calls))
    monkeypatch.setattr(backends, "_RESOLVED", {})
    x = torch.randn(5, 2, 3)
    ref = run_sequence_backend("lif", "torch", x, None, False, {"beta": 0.9})
    out = run_sequence_backend("lif", "auto", x, None, False, {"beta": 0.9})
    assert torch.equal(out.spikes, ref.spikes) and calls == []  # compiling elsewhere
    assert warmup._STATE["proc"] is cold
    cold.done = True  # the warm-up process has written the cache
    run_sequence_backend("lif", "auto", x, None, False, {"beta": 0.9})
    assert calls == [1] and warmup._STATE["ready"]


def test_explicit_numba_waits_for_the_kernels(cold):
    warmup.ensure_compiled(block=False)  # starts the warm-up
    assert warmup.ensure_compiled(block=True) and cold.waited


def test_the_cache_of_these_sources_is_read_without_compiling():
    # the session fixture compiled the kernels in this process, which wrote numba's cache
    assert warmup.cache_is_warm()


def _counting(fn, calls):
    def wrapped(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    wrapped.prepare = fn.prepare
    wrapped.__name__ = fn.__name__
    return wrapped
