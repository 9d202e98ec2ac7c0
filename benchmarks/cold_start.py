"""Cold start: the first LIF + LI forward + backward on the CPU in a fresh process, on a fresh
installation (no compiled kernels anywhere), then in a second fresh process once the kernels
are cached; the same on a read-only installation (the cache goes to the user's cache
directory).

Usage::

    python benchmarks/cold_start.py                  # prints the record
    python benchmarks/cold_start.py --out benchmarks/results/cold_start_cpu.json
    python benchmarks/cold_start.py --repeat 5 --skip-read-only

Each scenario copies this checkout's ``snn`` package into a new temporary folder (so no
``__pycache__`` and no numba cache exists) and gives the child processes a new ``HOME`` (so
numba's per-user cache is empty too). Each measurement is a new Python process; it reports
the import time, the time of the first call (forward + backward of a Linear + LIF + LI
model, ``backend="auto"``) and which implementation ran it, the second call, and when the
numba kernels ran (a process that finds a cold cache runs the reference to its end, waits for
the compilation it started and calls once more to show it did not switch), with numba's own count of
the specialisations it loaded from the cache (hits) and compiled (misses) in that process.

The read-only scenario runs the processes as user ``nobody`` (``setpriv``; needs root) on a
copy owned by root with mode 755, with a ``HOME`` that ``nobody`` owns: the record checks that
the kernels are cached under ``$XDG_CACHE_HOME/numba`` and not in the package, and that the
second process compiles nothing and writes no cache file. The load average and thread count
are recorded; the machine may be shared.

Every scenario runs ``--repeat`` times (3 by default), each time on a new copy with empty
caches, the scenarios interleaved. The record keeps every run (``runs``), the median, min and
max of each time over the runs (``summary``), the medians in ``cold``/``warm`` (with the
other fields of the first run), and the checks only if they held in every run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, threading, time
t0 = time.perf_counter()
import torch
t_torch = time.perf_counter()
import snn
t1 = time.perf_counter()
from snn.cpu_kernels import ops
ran = []
engine_forward = ops.ENGINE.forward
def forward(*args):  # counts the kernels run for this process's calls (not the loader's)
    if threading.current_thread() is threading.main_thread():
        ran.append(1)
    return engine_forward(*args)
ops.ENGINE.forward = forward
torch.manual_seed(0)
model = torch.nn.Sequential(snn.TimeDistributed(torch.nn.Linear(64, 256)), snn.LIF(),
                            snn.TimeDistributed(torch.nn.Linear(256, 10)), snn.LI())
x = torch.randn(32, 16, 64)
def call():
    n = len(ran)
    t = time.perf_counter()
    snn.reset(model)
    model(x).sum().backward()
    return time.perf_counter() - t, "numba" if len(ran) > n else "torch"
times, on, starts = [], [], []
deadline = time.perf_counter() + float(sys.argv[1])
from snn.cpu_kernels import warmup
for _ in range(2):
    starts.append(time.perf_counter() - t1)
    took, where = call()
    times.append(took)
    on.append(where)
# a cold process stays on the reference; it waits for the compilation it started (for the
# next process) and checks, with one more call, that it did not switch in the middle
compiled_after = None
for th in list(warmup._STATE["loaders"].values()):
    th.join(max(0.0, deadline - time.perf_counter()))
    compiled_after = time.perf_counter() - t1
took, where = call()
times.append(took)
on.append(where)
k = on.index("numba") if "numba" in on else None
from snn.cpu_kernels import lif_loops, loops
stats = {name: {"cache_hits": sum(fn.stats.cache_hits.values()),
                "cache_misses": sum(fn.stats.cache_misses.values())}
         for name, fn in (("forward", loops.forward), ("backward", loops.backward),
                          ("lif_forward", lif_loops.forward),
                          ("lif_backward", lif_loops.backward))}
print(json.dumps({
    "import_torch_s": t_torch - t0, "import_s": t1 - t0,
    "first_call_s": times[0], "first_call_ran_on": on[0],
    "import_and_first_call_s": t1 - t0 + times[0],
    "second_call_s": times[1], "second_call_ran_on": on[1],
    "calls_until_numba": None if k is None else k + 1,
    "numba_from_s_after_import": None if k is None else starts[k],
    "first_numba_call_s": None if k is None else times[k],
    "compiled_elsewhere_after_s": compiled_after, "runs_on_after_compilation": on[-1],
    "uid": os.geteuid(), "this_process_numba": stats,
}))
"""

UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
"""User ``nobody``, able to read every file (the Python installation may sit under a private
home) but to write only where the file permissions let it."""


def _run(code: str, env: dict[str, str], cwd: Path, *args: str,
         prefix: list[str] | None = None) -> dict[str, Any]:
    # cwd: a folder outside the checkout, so that "python -c" (which puts the working folder
    # first on sys.path) imports the copied package, not a checkout it was started from
    proc = subprocess.run([*(prefix or []), sys.executable, "-c", code, *args], env=env,
                          capture_output=True, text=True, timeout=3600, cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _caches(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*.nb[ic]")}


def _unprivileged_unavailable() -> str | None:
    """Why the read-only scenario cannot run here, or ``None``."""
    if os.geteuid() != 0:
        return "needs root, to run the processes as user nobody"
    if shutil.which("setpriv") is None:
        return "needs util-linux's setpriv"
    return None


def scenario(read_only: bool, wait_s: float) -> dict[str, Any]:
    """A fresh installation: a cold process, then a warm one (and, read-only, a third)."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        site = root / "site"
        shutil.copytree(REPO / "snn", site / "snn",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
        home = root / "home"
        home.mkdir()
        prefix = None
        if read_only:  # root owns the installation (mode 755), nobody runs it
            prefix = UNPRIVILEGED
            os.chown(home, 65534, 65534)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
        env.update(PYTHONPATH=str(site), HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
        runs = {"cold": _run(CHILD, env, home, str(wait_s), prefix=prefix)}
        before = _caches(home) | _caches(site)
        runs["warm"] = _run(CHILD, env, home, str(wait_s), prefix=prefix)
        after = _caches(home) | _caches(site)
        return {
            "read_only_install": read_only,
            "run_as": "nobody (uid 65534), installation owned by root, mode 755"
            if read_only else "the current user",
            **runs,
            "cache_in_package": any(site.rglob("*.nbi")),
            "cache_in_user_dir": any(home.rglob("*.nbi")),
            "warm_process_wrote_no_cache_file": before == after,
            "warm_process_compiled_nothing": all(
                s["cache_misses"] == 0 for s in runs["warm"]["this_process_numba"].values()),
        }


TIMES = ("import_torch_s", "import_s", "first_call_s", "import_and_first_call_s",
         "second_call_s", "numba_from_s_after_import", "first_numba_call_s",
         "compiled_elsewhere_after_s")
"""The times of a process that are summarised over the repeats."""

CHECKS = ("warm_process_wrote_no_cache_file", "warm_process_compiled_nothing")
"""Checks that must hold in every repeat."""


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario over its repeats: ``summary`` (median, min, max and count of each time
    present in every run, and the implementations the first call ran on), ``cold``/``warm``
    as the first run's with its times replaced by the medians, every run in ``runs``, and
    each check true only if it held in every run."""
    out: dict[str, Any] = {k: runs[0][k] for k in ("read_only_install", "run_as")}
    out["repeats"] = len(runs)
    out["summary"] = {}
    for proc in ("cold", "warm"):
        procs = [r[proc] for r in runs if proc in r]
        if not procs:
            continue
        summary: dict[str, Any] = {
            "first_call_ran_on": sorted({p["first_call_ran_on"] for p in procs})}
        medians = dict(procs[0])
        for key in TIMES:
            values = [p.get(key) for p in procs]
            if values and all(v is not None for v in values):
                summary[key] = {"median": statistics.median(values), "min": min(values),
                                "max": max(values), "n": len(values)}
                medians[key] = summary[key]["median"]
        out["summary"][proc] = summary
        out[proc] = medians
    for key in ("cache_in_package", "cache_in_user_dir"):  # one value, or one per run
        values = [r[key] for r in runs]
        out[key] = values[0] if len(set(values)) == 1 else values
    for key in CHECKS:
        out[key] = all(r[key] for r in runs)
    out["runs"] = runs
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="write the JSON record here")
    parser.add_argument("--wait", type=float, default=1200.0,
                        help="seconds a process waits for the kernels to take over")
    parser.add_argument("--skip-read-only", action="store_true",
                        help="only the writable installation")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each scenario, each on a new copy (default 3)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    import torch

    skipped = "--skip-read-only" if args.skip_read_only else _unprivileged_unavailable()
    read_only = None if skipped else True
    load_before = os.getloadavg()
    modes = [False] if read_only is None else [False, True]
    runs: dict[bool, list[dict[str, Any]]] = {m: [] for m in modes}
    for _ in range(args.repeat):  # interleaved: a change of load touches every scenario
        for m in modes:
            runs[m].append(scenario(m, args.wait))

    record = {
        "benchmark": "cold_start",
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
        "load_average_before": load_before,
        "running_as_root": os.geteuid() == 0,
        "read_only_skipped": skipped,
        "repeat": args.repeat,
        "scenarios": [summarise(runs[m]) for m in modes],
        "load_average_after": os.getloadavg(),
    }
    text = json.dumps(record, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
