"""The Open Neuromorphic benchmark setup: one ``Linear(n, n)`` plus one LIF layer, batch 16,
T = 500, forward and backward; time and peak memory per library, every library in one run.

Usage::

    python benchmarks/bench_open_neuromorphic.py                  # CPU (and GPU when present)
    python benchmarks/bench_open_neuromorphic.py --device cuda --n 4096,8192,16384
    python benchmarks/bench_open_neuromorphic.py --device cpu --n 1024,2048,4096

Each (library, n) runs in a fresh subprocess, so its peak memory is its own: on CUDA
``torch.cuda.max_memory_allocated``, on CPU the growth of the process's peak resident set over
its resident set before the first forward pass (model and input already allocated). The
benchmark's sizes are n = 4096, 8192, 16384; on a CPU the default stops at 4096 (the
``Linear`` alone costs about 0.8 TFLOP per forward+backward at n = 4096, 13 TFLOP at 16384).
Writes ``benchmarks/results/open_neuromorphic_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from bench_neurons import (
    ENV_OF_NOTE,
    PEERS,
    REPO,
    RESULTS,
    device_info,
    set_threads,
    sync,
    version,
    write_json,
)

BATCH = 16
STEPS = 500
DEFAULT_N = {"cpu": [1024, 2048, 4096], "cuda": [4096, 8192, 16384]}
DEFAULT_PEERS = ["snn-fused", "spikingjelly", "snntorch", "norse"]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _reset_peak_rss() -> bool:
    """Reset the process's peak resident set (Linux >= 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(key: str, n: int, device_name: str, repeat: int) -> dict[str, Any]:
    """One library at one size, in this process."""
    device = torch.device(device_name)
    torch.manual_seed(0)
    linear = torch.nn.Linear(n, n).to(device)
    torch.nn.init.normal_(linear.weight, std=1.0 / n**0.5)
    lif = PEERS[key][2](device)
    x = torch.randn(STEPS, BATCH, n, device=device)

    def step() -> float:
        linear.zero_grad(set_to_none=True)
        sync(device)
        t0 = time.perf_counter()
        lif(linear(x)).sum().backward()
        sync(device)
        return time.perf_counter() - t0

    first = step()  # warm-up: kernel compilation/loading, allocator caches
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = _rss_bytes()
        if not _reset_peak_rss():
            raise RuntimeError("cannot reset the peak RSS (/proc/self/clear_refs) to measure")
    measured = step()
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        peak = _peak_rss_bytes() - base
    times = [measured] if first > 20 else sorted([measured, *(step() for _ in range(repeat - 1))])
    return {"seconds": times[len(times) // 2], "runs": len(times), "peak_memory_bytes": peak,
            "load_average_1min": os.getloadavg()[0]}


def run_isolated(key: str, n: int, device: str, repeat: int, timeout: float,
                 threads: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", key, "--n", str(n), "--device", device,
           "--repeat", str(repeat)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    try:
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=Path(__file__).resolve().parent, env=env)
    except subprocess.TimeoutExpired:
        return {"skipped": f"over the {timeout:.0f} s time limit"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"failed: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--n", default=None, help="comma-separated layer widths")
    parser.add_argument("--peers", default=",".join(DEFAULT_PEERS),
                        help=f"comma-separated subset of {list(PEERS)}")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch and numba (default: their defaults)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per (library, n)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    if args.worker:
        print(json.dumps(worker(args.worker, int(args.n), args.device, args.repeat)))
        return 0
    peers = [p for p in args.peers.split(",") if p]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        parser.error(f"--peers: unknown {unknown}; expected names from {list(PEERS)}")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    for name in devices:
        if name == "cuda" and not torch.cuda.is_available():
            print("GPU part skipped: torch.cuda.is_available() is False on this machine")
            continue
        widths = [int(v) for v in args.n.split(",")] if args.n else DEFAULT_N[name]
        info = device_info(torch.device(name))
        print(f"== {name}: {info.get('name')}  Linear(n, n) + LIF, batch {BATCH}, T = {STEPS}")
        results = []
        for n in widths:
            print(f"-- n = {n}")
            rows = {}
            for key in peers:
                row = {"label": PEERS[key][0], "version": version(PEERS[key][1]),
                       **run_isolated(key, n, name, args.repeat, args.timeout, args.threads)}
                rows[key] = row
            ours = rows.get("snn-fused", {}).get("seconds")
            for row in rows.values():
                if "seconds" not in row:
                    print(f"  {row['label']:55s} skipped: {row['skipped']}")
                    continue
                if ours:
                    row["time_over_ours"] = row["seconds"] / ours
                print(f"  {row['label']:55s} {row['seconds']:8.3f} s"
                      + (f"  x{row['time_over_ours']:5.2f}" if ours else "")
                      + f"  peak {row['peak_memory_bytes'] / 2**20:8.0f} MiB")
            results.append({"n": n, "libraries": rows})
        record = {
            "benchmark": "Open Neuromorphic: Linear(n, n) + LIF, forward+backward",
            "batch": BATCH, "T": STEPS, "device": info,
            "peak_memory": ("torch.cuda.max_memory_allocated" if name == "cuda" else
                            "growth of peak RSS over RSS before the first forward"),
            "loss": "spikes.sum().backward()", "repeat": args.repeat, "threads": threads,
            "env": {k: os.environ[k] for k in ENV_OF_NOTE if k in os.environ},
            "load_average": os.getloadavg(), "results": results,
        }
        out = args.out or RESULTS / f"open_neuromorphic_{name}.json"
        write_json(record, out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
