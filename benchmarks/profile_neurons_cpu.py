"""Where the CPU time of one fused LIF forward + backward goes.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/profile_neurons_cpu.py --size 256x32x16384
    OMP_NUM_THREADS=1 python benchmarks/profile_neurons_cpu.py --size 64x16x4096 --repeat 9

Runs, interleaved ``--repeat`` times, and reports the median wall time, the median process
CPU time (the figure to trust on a shared machine), their spread and the minor page faults of:

- ``full``: ``snn.LIF(backend="auto")`` forward, ``spikes.sum()``, backward (what
  ``bench_neurons.py`` times);
- ``loop_forward`` / ``loop_backward``: the numba loops the engine runs for this neuron
  (:mod:`snn.cpu_kernels.lif_loops`) alone, into outputs written before;
- ``staged_forward`` / ``staged_backward``: the same with the general staged loops of
  :mod:`snn.cpu_kernels.loops` (what per-neuron parameters run);
- ``fresh_fill``: allocating one ``[T, B*N]`` float32 tensor with ``torch.empty`` and writing
  it once (the cost of an output on untouched pages, which the output pool avoids);
- ``copy``: a copy of ``x`` into a written buffer with NumPy (glibc's ``memcpy``: the
  bandwidth reference of ``bench_neurons.py``'s floor);
- ``loop_copy``: the same copy as a numba loop (ordinary stores, which read each output line
  before writing it): what one pass that reads ``x`` and writes ``[T, N]`` costs at best in
  numba; forward and backward are each such a pass;
- ``sum``: the user's ``spikes.sum()``.

Prints only; ``--out`` writes the numbers as JSON (with the load average and threads).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout: profile this checkout's snn
    sys.path.insert(0, str(REPO))


def _measure(fn: Callable[[], Any]) -> tuple[float, float, int]:
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    w1, c1 = time.perf_counter(), time.process_time()
    return w1 - w0, c1 - c0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0


@functools.cache
def _copy_loop() -> Callable[[np.ndarray, np.ndarray], None]:
    """``copy_rows(src, dst)``: ``dst[:] = src`` as a numba loop (compiled on first call)."""
    from numba import njit

    @njit(nogil=True)
    def copy_rows(a, b):  # pragma: no cover - compiled
        for t in range(a.shape[0]):
            at = a[t]
            bt = b[t]
            for j in range(at.shape[0]):
                bt[j] = at[j]

    return copy_rows


def cases(T: int, B: int, N: int) -> dict[str, Callable[[], Any]]:
    """The measured operations over one shared input."""
    import snn
    from snn.cpu_kernels import lif_loops, loops
    from snn.surrogate import get_surrogate

    nn = B * N
    x = torch.randn(T, B, N, generator=torch.Generator().manual_seed(0)) * 0.7 + 0.3
    xn = x.reshape(T, nn).numpy()
    neuron = snn.LIF(beta=0.5, reset="subtract", surrogate="atan", backend="auto")
    p = np.zeros(loops.N_CONST, np.float32)
    p[loops.P_ONE] = 1.0
    p[loops.P_K0], p[loops.P_K1], p[loops.P_K2] = get_surrogate("atan").kernel_constants()
    one = np.ones(1, np.float32)
    beta = np.full(1, 0.5, np.float32)
    zeros = np.zeros(nn, np.float32)
    spikes = np.zeros((T, nn), np.float32)
    gx = np.zeros((T, nn), np.float32)
    finals = [np.empty(nn, np.float32) for _ in range(3)]
    grads = [np.empty(nn, np.float32) for _ in range(3)]
    acc = [np.empty(nn, np.float64) for _ in range(2)]
    g_all = np.ones((1, 1), np.float32)
    sid = get_surrogate("atan").kernel_id
    spikes_t = torch.from_numpy(spikes)

    def full() -> None:
        xx = x.detach().requires_grad_()
        neuron.reset_state()
        neuron(xx).sum().backward()

    def loop_forward() -> None:
        lif_loops.forward(xn, zeros, zeros, beta, one, one, p, loops.LIF, loops.SUBTRACT,
                          lif_loops.forward_block(nn, 1), 1, spikes, *finals[:2],
                          lif_loops.streams(spikes.nbytes))

    def loop_backward() -> None:
        lif_loops.backward(xn, zeros, zeros, beta, one, one, p, loops.LIF, loops.SUBTRACT,
                           False, sid, g_all, 1, zeros, zeros, False, False, False,
                           lif_loops.backward_block(T, 4, nn, 1), 1, gx, *grads[:2], *acc)

    def staged_forward() -> None:
        loops.forward(xn, zeros, zeros, zeros, beta, one, one, p, loops.LIF, loops.SUBTRACT,
                      loops.BINARY, False, 1, spikes, spikes[:1, :1], *finals, False)

    def staged_backward() -> None:
        loops.backward(xn, zeros, zeros, zeros, beta, one, one, p, loops.LIF, loops.SUBTRACT,
                       loops.BINARY, False, sid, g_all, 1, g_all, 2, zeros, zeros, zeros,
                       False, False, False, loops.backward_block(T), 1, gx, *grads, *acc)

    def fresh_fill() -> None:
        torch.empty(T, nn).fill_(0.0)

    def copy() -> None:
        np.copyto(gx, xn)

    def loop_copy() -> None:
        _copy_loop()(xn, gx)

    return {"full": full, "loop_forward": loop_forward, "loop_backward": loop_backward,
            "staged_forward": staged_forward, "staged_backward": staged_backward,
            "fresh_fill": fresh_fill, "copy": copy, "loop_copy": loop_copy,
            "sum": lambda: spikes_t.sum()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="256x32x16384", help="TxBxN")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="write the numbers as JSON")
    args = parser.parse_args(argv)
    T, B, N = (int(v) for v in args.size.split("x"))
    import numba

    from snn.cpu_kernels.warmup import ensure_compiled

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    ensure_compiled(True)
    ops = cases(T, B, N)
    for fn in ops.values():  # loads the kernels, fills the output pool
        fn()
    times: dict[str, list[tuple[float, float, int]]] = {k: [] for k in ops}
    load = os.getloadavg()
    for _ in range(args.repeat):
        for name, fn in ops.items():
            times[name].append(_measure(fn))
    result: dict[str, Any] = {"size": [T, B, N], "repeat": args.repeat, "threads": 1,
                              "load_average_before": load, "load_average_after": os.getloadavg(),
                              "cases": {}}
    print(f"{args.size}, 1 thread, load {load[0]:.1f}: median [min-max] over {args.repeat}")
    print(f"{'':14s} {'wall ms':>22s} {'cpu ms':>22s} {'page faults':>12s}")
    for name, runs in times.items():
        wall, cpu, faults = ([r[i] for r in runs] for i in range(3))
        row = {k: {"median": statistics.median(v), "min": min(v), "max": max(v)}
               for k, v in (("wall_s", wall), ("cpu_s", cpu), ("minor_faults", faults))}
        result["cases"][name] = row
        w, c = row["wall_s"], row["cpu_s"]
        print(f"{name:14s} {w['median'] * 1e3:8.1f} [{w['min'] * 1e3:.0f}-{w['max'] * 1e3:.0f}]"
              f" {c['median'] * 1e3:8.1f} [{c['min'] * 1e3:.0f}-{c['max'] * 1e3:.0f}]"
              f" {statistics.median(faults):12.0f}")
    if args.out is not None:
        from snn._files import atomic_open

        with atomic_open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
