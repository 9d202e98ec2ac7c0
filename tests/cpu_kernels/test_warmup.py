"""The first call: ``backend="auto"`` loads the cached kernels in the calling thread, or, on a
cold cache, runs the reference for the whole process while they compile in another process; an
explicit ``backend="numba"`` waits for them. And where numba caches them: next to the sources, or in
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
    monkeypatch.setattr(warmup, "_STATE", {"ready": set(), "reference": set(), "loaders": {},
                                           "lock": threading.RLock()})


@pytest.fixture
def counted_engine(fresh_state, monkeypatch):
    """The calls that reach the numba engine."""
    calls: list[int] = []
    real = backends._load("lif", "engine:numba")
    monkeypatch.setitem(backends._LOADED, ("lif", "engine:numba"), _counting(real, calls))
    monkeypatch.setattr(backends, "_RESOLVED", {})
    return calls


def _auto(x):
    return run_sequence_backend("lif", "auto", x, None, False, {"beta": 0.9})


def test_warm_cache_auto_loads_the_kernels_in_the_calling_thread(counted_engine, monkeypatch):
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: True)
    x = torch.randn(5, 2, 3)
    ref = run_sequence_backend("lif", "torch", x, None, False, {"beta": 0.9})
    out = _auto(x)
    assert counted_engine == [1] and torch.equal(out.spikes, ref.spikes)
    assert warmup._STATE["ready"] == {torch.float32}  # only the dtype that was asked for
    assert warmup._STATE["loaders"] == {} and warmup._STATE["reference"] == set()


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_a_first_call_without_gradients_loads_the_kernels(counted_engine, monkeypatch, mode):
    """Loading runs a tiny forward + backward: it works under the caller's no_grad or
    inference_mode, and leaves the caller's random stream as it was."""
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: True)
    x = torch.randn(5, 2, 3)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    with mode():
        out = _auto(x)
    assert counted_engine == [1] and out.spikes.shape == x.shape
    assert torch.equal(torch.rand(3), expected)


def test_cold_cache_auto_runs_the_reference_for_the_whole_process(counted_engine, monkeypatch):
    """The choice is made once: a compilation that ends during the run does not move the
    process onto the kernels (the two agree to rounding, not always to the last bit)."""
    proc = FakeProcess()
    started = []
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: proc.done)
    monkeypatch.setattr(warmup, "_start", lambda: started.append(1) or proc)
    x = torch.randn(5, 2, 3)
    ref = run_sequence_backend("lif", "torch", x, None, False, {"beta": 0.9})
    out = _auto(x)
    assert counted_engine == [] and torch.equal(out.spikes, ref.spikes)
    warmup._STATE["loaders"][torch.float32].join()
    assert started == [1] and proc.done and warmup.cache_is_warm()
    for _ in range(2):
        out = _auto(x)
        assert counted_engine == [] and torch.equal(out.spikes, ref.spikes)
    assert warmup._STATE["reference"] == {torch.float32}
    assert len(set(map(id, warmup._STATE["loaders"].values()))) == 1  # one compilation


def test_explicit_numba_waits_for_the_compilation_under_way(fresh_state, monkeypatch):
    gate = threading.Event()
    waited = []
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: False)
    monkeypatch.setattr(warmup, "_wait_for_cache", lambda: gate.wait(60) and waited.append(1))
    assert not warmup.ensure_compiled(block=False, dtype=torch.float64)
    timer = threading.Timer(0.2, gate.set)
    timer.start()
    assert warmup.ensure_compiled(block=True, dtype=torch.float64)
    assert waited == [1] and torch.float64 in warmup._STATE["ready"]
    timer.join()
    assert not warmup.ensure_compiled(block=False, dtype=torch.float64)  # auto: still decided


def test_a_dtype_without_kernels_starts_no_loader(fresh_state):
    assert warmup.ensure_compiled(block=False, dtype=torch.float16)
    assert warmup._STATE["loaders"] == {}


def test_cold_cache_one_compilation_is_started_and_waited_for(fresh_state, monkeypatch):
    proc = FakeProcess()
    started = []
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: proc.done)
    monkeypatch.setattr(warmup, "_start", lambda: started.append(1) or proc)
    warmup._compile_elsewhere()
    assert started == [1] and proc.done
    assert warmup._STATE["proc"] is proc


def test_cold_cache_compiled_by_another_process_is_waited_for(fresh_state, monkeypatch):
    looks = iter([False, False, False, True, True])
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: next(looks))
    monkeypatch.setattr(warmup, "_start", lambda: None)  # another process holds the lock
    monkeypatch.setattr(warmup, "POLL", 0.0)
    warmup._compile_elsewhere()
    assert next(looks) is True and "proc" not in warmup._STATE


def test_no_lock_possible_the_background_thread_gives_up(fresh_state, monkeypatch):
    """A cache directory nobody can write: no compilation is waited for; ``auto`` stays on
    the reference and an explicit ``numba`` compiles in its own thread."""
    def unwritable():
        raise PermissionError(13, "read-only cache directory")

    monkeypatch.setattr(warmup, "cache_is_warm", lambda: False)
    monkeypatch.setattr(warmup, "_start", unwritable)
    warmup._compile_elsewhere()
    assert "proc" not in warmup._STATE


def test_a_lock_that_never_clears_is_waited_for_at_most_lock_age(fresh_state, monkeypatch):
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: False)
    monkeypatch.setattr(warmup, "_start", lambda: None)
    monkeypatch.setattr(warmup, "POLL", 0.001)
    monkeypatch.setattr(warmup, "LOCK_AGE", 0.05)
    warmup._compile_elsewhere()  # returns (the test would hang otherwise)


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


class FailingProcess(FakeProcess):
    def wait(self) -> int:
        self.done = True
        return 3


def test_a_failing_compilation_process_is_reported_once_with_its_error_output(
        fresh_state, monkeypatch):
    """The child's exit status and the end of its error output reach a warning and
    :func:`warmup.status`; a second failure in the same process does not warn again."""
    def start():
        log = tempfile.TemporaryFile()  # noqa: SIM115  (closed by warmup._log_tail)
        log.write(b"Traceback (most recent call last):\nnumba.core.errors.LoweringError: boom\n")
        warmup._STATE["log"] = log
        return FailingProcess()

    monkeypatch.setattr(warmup, "cache_is_warm", lambda: False)
    monkeypatch.setattr(warmup, "_start", start)
    with pytest.warns(warmup.CompileWarning, match="status 3.*LoweringError: boom"):
        warmup._compile_elsewhere()
    assert "LoweringError: boom" in warmup.status()["error"]
    warmup._STATE.pop("proc")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warmup._compile_elsewhere()  # fails again: no second warning
    assert "status 3" in warmup.status()["error"]


def test_an_exception_in_the_background_thread_is_reported(fresh_state, monkeypatch):
    def broken():
        raise ValueError("cannot read numba's cache index")

    monkeypatch.setattr(warmup, "cache_is_warm", broken)
    assert warmup.status()["error"] is None
    with pytest.warns(warmup.CompileWarning, match="ValueError: cannot read numba's cache"):
        warmup._compile_elsewhere()
    state = warmup.status()
    assert state["error"] == "ValueError: cannot read numba's cache index"
    assert not state["compiling"]


def test_status_names_the_dtypes_each_path_runs(counted_engine, monkeypatch):
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: True)
    _auto(torch.randn(5, 2, 3))
    assert warmup.status() == {"ready": ["torch.float32"], "reference": [], "compiling": False,
                               "error": None}
