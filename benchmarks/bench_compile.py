"""torch.compile over the fused path: graph breaks, and compiled against eager time of a
Linear + LIF + Linear + LI model (forward + backward, ``backend="auto"``) on the CPU.

Usage::

    python benchmarks/bench_compile.py                       # prints the record
    python benchmarks/bench_compile.py --out benchmarks/results/compile_cpu.json

Medians and quartiles of interleaved repeats (eager, compiled, eager, ...), with the thread
count and the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench_neurons import spread, write_json  # noqa: E402

import snn  # noqa: E402
from snn.cpu_kernels.warmup import use_kernels  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="64x16x1024", help="TxBxN of the LIF layer")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", default="inductor", help="torch.compile backend")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    T, B, N = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(args.threads)
    kernels = use_kernels()  # time the kernels whatever the state of the cache
    torch.manual_seed(0)
    model = nn.Sequential(snn.TimeDistributed(nn.Linear(128, N)), snn.LIF(),
                          snn.TimeDistributed(nn.Linear(N, 10)), snn.LI())
    x = torch.randn(T, B, 128)

    def step(m: nn.Module) -> None:
        snn.reset(model)
        m(x).sum().backward()

    step(model)  # eager first: resolutions and kernels loaded outside the trace
    explanation = torch._dynamo.explain(model)(x)
    snn.reset(model)
    compiled = torch.compile(model, fullgraph=True, backend=args.backend)
    t0 = time.perf_counter()
    step(compiled)
    compile_s = time.perf_counter() - t0
    step(model)
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for r in range(args.repeat):
        for name in (("eager", "compiled") if r % 2 == 0 else ("compiled", "eager")):
            m = model if name == "eager" else compiled
            t0 = time.perf_counter()
            step(m)
            times[name].append(time.perf_counter() - t0)
    record = {
        "benchmark": "torch.compile over Linear+LIF+Linear+LI, forward+backward",
        "size": [T, B, N], "torch": torch.__version__, "compile_backend": args.backend,
        "threads": torch.get_num_threads(), "load_average": os.getloadavg(),
        "cpu_kernels": kernels, "graph_breaks": explanation.graph_break_count,
        "graphs": explanation.graph_count,
        "first_compiled_call_s": compile_s,
        "eager": spread(times["eager"]), "compiled": spread(times["compiled"]),
        "times": times,
    }
    record["compiled_over_eager"] = record["compiled"]["median"] / record["eager"]["median"]
    print(json.dumps(record, indent=2))
    if args.out is not None:
        write_json(record, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
