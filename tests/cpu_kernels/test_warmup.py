"""The first call: ``backend="auto"`` runs the reference while a loader thread loads the
kernels (and, on a cold cache, waits for their compilation in another process); an explicit
``backend="numba"`` waits for them. And where numba caches them: next to the sources, or in
the user's cache directory when the installation is read-only."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import torch

from snn import backends
from snn.backends import run_sequence_backend

pytest.importorskip("numba", reason="the numba backend needs numba (pip install 'snn[cpu]')")

from snn.cpu_kernels import warmup

REPO = Path(__file__).resolve().parents[2]


class FakeProcess:
    def __init__(self) -> None:
        self.done = False

    def poll(self) -> int | None:
        return 0 if self.done else None

    def wait(self) -> int:
        self.done = True
        return 0


@pytest.fixture
def fresh_state(monkeypatch):
    """This process as if no kernel had been loaded yet."""
    monkeypatch.setattr(warmup, "_STATE", {"ready": set(), "loaders": {},
                                           "lock": threading.Lock()})


@pytest.fixture
def gated_loader(fresh_state, monkeypatch):
    """A loader that finishes only when the test sets the returned event."""
    gate = threading.Event()
    loaded: list[torch.dtype] = []

    def load(dtype):
        gate.wait(60)
        loaded.append(dtype)

    monkeypatch.setattr(warmup, "_load", load)
    return gate, loaded


def test_auto_runs_the_reference_until_the_loader_is_done(gated_loader, monkeypatch):
    gate, loaded = gated_loader
    calls = []
    real = backends._load("lif", "engine:numba")
    monkeypatch.setitem(backends._LOADED, ("lif", "engine:numba"), _counting(real, calls))
    monkeypatch.setattr(backends, "_RESOLVED", {})
    x = torch.randn(5, 2, 3)
    ref = run_sequence_backend("lif", "torch", x, None, False, {"beta": 0.9})
    for _ in range(2):  # the loader is still at work: both calls run the reference
        out = run_sequence_backend("lif", "auto", x, None, False, {"beta": 0.9})
        assert torch.equal(out.spikes, ref.spikes) and calls == []
    loader = warmup._STATE["loaders"][torch.float32]
    assert loader.is_alive() and list(warmup._STATE["loaders"]) == [torch.float32]
    gate.set()
    loader.join()
    out = run_sequence_backend("lif", "auto", x, None, False, {"beta": 0.9})
    assert calls == [1] and loaded == [torch.float32]
    assert torch.equal(out.spikes, ref.spikes)
    assert warmup._STATE["ready"] == {torch.float32}  # only the dtype that was asked for


def test_explicit_numba_waits_for_the_loader(gated_loader):
    gate, loaded = gated_loader
    assert not warmup.ensure_compiled(block=False, dtype=torch.float64)  # starts the loader
    timer = threading.Timer(0.2, gate.set)
    timer.start()
    assert warmup.ensure_compiled(block=True, dtype=torch.float64)
    assert loaded == [torch.float64] and torch.float64 in warmup._STATE["ready"]
    timer.join()


def test_a_dtype_without_kernels_starts_no_loader(gated_loader):
    assert warmup.ensure_compiled(block=False, dtype=torch.float16)
    assert warmup._STATE["loaders"] == {}


def test_cold_cache_the_loader_waits_for_one_compilation_elsewhere(fresh_state, monkeypatch):
    proc = FakeProcess()
    started, exercised = [], []
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: proc.done)
    monkeypatch.setattr(warmup, "_start", lambda: started.append(1) or proc)
    monkeypatch.setattr(warmup, "_exercise", exercised.append)
    warmup._load(torch.float32)
    assert started == [1] and proc.done and exercised == [torch.float32]
    assert warmup._STATE["proc"] is proc


def test_cold_cache_compiled_by_another_process_is_waited_for(fresh_state, monkeypatch):
    looks = iter([False, False, False, True, True])
    exercised = []
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: next(looks))
    monkeypatch.setattr(warmup, "_start", lambda: None)  # another process holds the lock
    monkeypatch.setattr(warmup, "POLL", 0.0)
    monkeypatch.setattr(warmup, "_exercise", exercised.append)
    warmup._load(torch.float64)
    assert exercised == [torch.float64] and "proc" not in warmup._STATE


def test_no_lock_possible_the_loader_compiles_itself(fresh_state, monkeypatch):
    """A cache directory nobody can write (and numba then caches nothing): the loader does
    not wait for a warm cache that never comes; it compiles in this process."""
    exercised = []

    def unwritable():
        raise PermissionError(13, "read-only cache directory")

    monkeypatch.setattr(warmup, "cache_is_warm", lambda: False)
    monkeypatch.setattr(warmup, "_start", unwritable)
    monkeypatch.setattr(warmup, "_exercise", exercised.append)
    warmup._load(torch.float32)
    assert exercised == [torch.float32] and "proc" not in warmup._STATE


def test_a_lock_that_never_clears_is_waited_for_at_most_lock_age(fresh_state, monkeypatch):
    exercised = []
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: False)
    monkeypatch.setattr(warmup, "_start", lambda: None)
    monkeypatch.setattr(warmup, "POLL", 0.001)
    monkeypatch.setattr(warmup, "LOCK_AGE", 0.05)
    monkeypatch.setattr(warmup, "_exercise", exercised.append)
    warmup._load(torch.float64)  # returns (the test would hang otherwise) and compiles
    assert exercised == [torch.float64]


def test_the_cache_of_these_sources_is_read_without_compiling():
    warmup._exercise(torch.float32)  # compiles (and caches) the loops unless cached already
    assert warmup.cache_is_warm()


def test_a_read_only_installation_caches_in_the_user_cache_directory(tmp_path, monkeypatch):
    """numba's choice for the loops: ``__pycache__`` beside them when it can write there,
    else ``$XDG_CACHE_HOME/numba`` (what makes a read-only installation compile once per
    user, not once per process)."""
    from numba.core import caching, config

    from snn.cpu_kernels import loops

    package = Path(loops.__file__).resolve().parent
    real = caching.tempfile.TemporaryFile

    def refuse_in_package(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve().is_relative_to(package):
            raise PermissionError(13, "read-only installation", dir)
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    writable = Path(caching.FunctionCache(loops.forward.py_func)._cache_path)
    assert writable == package / "__pycache__"
    monkeypatch.setattr(caching.tempfile, "TemporaryFile", refuse_in_package)
    read_only = Path(caching.FunctionCache(loops.forward.py_func)._cache_path)
    assert read_only.is_relative_to(tmp_path / "cache" / "numba")
    assert warmup.cache_directory() in (writable, Path(config.CACHE_DIR or writable))


def _unprivileged() -> list[str]:
    setpriv = shutil.which("setpriv")
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to run a process as the unprivileged user 'nobody'")
    if setpriv is None:
        pytest.skip("needs util-linux's setpriv to run a process as user 'nobody'")
    # nobody may read everything (the Python installation may live under /root) but
    # writes only where the permissions let it
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
            "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


def test_unprivileged_user_on_a_root_owned_installation_uses_its_cache_directory():
    prefix = _unprivileged()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        shutil.copytree(REPO / "snn", root / "site" / "snn",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
        home = root / "home"
        home.mkdir()
        os.chown(home, 65534, 65534)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
        env.update(PYTHONPATH=str(root / "site"), HOME=str(home),
                   XDG_CACHE_HOME=str(home / ".cache"))
        code = ("import os; from snn.cpu_kernels import warmup; "
                "print(os.geteuid(), warmup.cache_directory())")
        proc = subprocess.run([*prefix, sys.executable, "-c", code], env=env, cwd=home,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        uid, path = proc.stdout.split()
        assert uid == "65534"
        assert Path(path).is_relative_to(home / ".cache" / "numba"), path
        assert Path(path).is_dir() and Path(path).stat().st_uid == 65534
        assert not (root / "site" / "snn" / "cpu_kernels" / "__pycache__").exists()
        os.chmod(root / "site", stat.S_IRWXU)


def _counting(fn, calls):
    def wrapped(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    wrapped.prepare = fn.prepare
    wrapped.__name__ = fn.__name__
    return wrapped
