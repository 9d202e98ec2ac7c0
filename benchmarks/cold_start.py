"""Cold start: the time of the first LIF + LI forward + backward on the CPU in a fresh
process, on a fresh installation (no compiled kernels anywhere), then again once the kernels
are cached, and the same on a read-only installation (the cache goes to the user's cache
directory).

Usage::

    python benchmarks/cold_start.py                  # prints the record
    python benchmarks/cold_start.py --out benchmarks/results/cold_start_cpu.json

Each scenario copies this checkout's ``snn`` package into a new temporary folder (so no
``__pycache__`` and no numba cache exists) and gives the child processes a new ``HOME`` (so
numba's per-user cache is empty too). Each measurement is a new Python process; it reports
the import time, the time of the first call (forward + backward of a Linear + LIF + LI
model, ``backend="auto"``), which implementation ran it, and the time of a second call. The
load average and thread count are recorded; the machine may be shared. As root, file
permissions do not bind: the read-only scenario then writes into the package like the other
(the record says ``running_as_root``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, time
t0 = time.perf_counter()
import torch
import snn
from snn.cpu_kernels import warmup
t1 = time.perf_counter()
torch.manual_seed(0)
model = torch.nn.Sequential(snn.TimeDistributed(torch.nn.Linear(64, 256)), snn.LIF(),
                            snn.TimeDistributed(torch.nn.Linear(256, 10)), snn.LI())
x = torch.randn(32, 16, 64)
def call():
    snn.reset(model)
    model(x).sum().backward()
call()
t2 = time.perf_counter()
first_on = "numba" if warmup._STATE.get("ready") else "torch (kernels compiling elsewhere)"
call()
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_call_s": t2 - t1, "first_call_ran_on": first_on,
                  "second_call_s": t3 - t2}))
"""

WAIT = r"""
import sys, time
from snn.cpu_kernels import warmup
deadline = time.time() + float(sys.argv[1])
while not warmup.cache_is_warm() and time.time() < deadline:
    time.sleep(1.0)
print(warmup.cache_is_warm())
"""


def _run(code: str, env: dict[str, str], cwd: Path, *args: str) -> str:
    # cwd: the copy, so that "python -c" (which puts the working folder first on sys.path)
    # imports the copied package, not a checkout it was started from
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=3600, cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return proc.stdout.strip().splitlines()[-1]


def scenario(read_only: bool, wait_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "snn", root / "snn",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
        home = root / "home"
        home.mkdir()
        if read_only:
            for path in (root / "snn").rglob("*"):
                path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
            (root / "snn").chmod(0o555)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
        env.update(PYTHONPATH=str(root), HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
        cold = json.loads(_run(CHILD, env, home))
        t = time.perf_counter()
        warmed = _run(WAIT, env, home, str(wait_s)) == "True"
        waited = time.perf_counter() - t
        warm = json.loads(_run(CHILD, env, home))
        in_tree = any((root / "snn").rglob("*.nbi"))
        user = any(home.rglob("*.nbi"))
        for path in (root / "snn").rglob("*"):  # let the temporary folder be removed
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        (root / "snn").chmod(0o755)
        return {"read_only_install": read_only, "cold": cold,
                "kernels_compiled_elsewhere_after_s": waited if warmed else None,
                "warm": warm, "cache_in_package": in_tree, "cache_in_user_dir": user}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="write the JSON record here")
    parser.add_argument("--wait", type=float, default=1200.0,
                        help="seconds to wait for the background compilation")
    parser.add_argument("--skip-read-only", action="store_true",
                        help="only the writable installation (as root, permissions do not "
                        "bind, so the read-only scenario is not one)")
    args = parser.parse_args(argv)
    import torch

    record = {
        "benchmark": "cold_start",
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "running_as_root": os.geteuid() == 0,
        "scenarios": [scenario(False, args.wait)]
        + ([] if args.skip_read_only else [scenario(True, args.wait)]),
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
