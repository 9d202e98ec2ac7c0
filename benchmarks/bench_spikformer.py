"""Benchmark: one training step of Spikformer-4-384 (CIFAR-10 configuration) against
SpikingJelly 2.0's own ``spikformer_cifar10``.

Both models take 32x32 RGB images repeated over T = 4 steps; one step is forward, cross-entropy
on the time-mean of the logits, and backward. Every measurement runs in its own subprocess
(``--child``): a warm-up step at batch 1 (kernel compilation, allocator and oneDNN set-up, for
both libraries), then one step at the full batch whose peak memory is the highest resident set
sampled every millisecond during the step minus the resident set before it, then the timed
steps. Our model runs in its default configuration, whose spiking layers keep packed spikes for
the backward pass (:mod:`snn.layers.lean`, gradients bit-identical to the plain modules); the
numba kernels get the same thread count as PyTorch. Rounds interleave the two libraries and
alternate their order; the record holds medians with min/max, the thread count and the load
average.

Resident-set peaks also count freed memory that glibc keeps in its heap (after a large block
is freed, glibc raises its mmap threshold up to 32 MiB and serves later blocks from the heap,
whose freed pages stay resident). ``--returning-allocator`` measures every process a second
time with a fixed threshold, so that the resident set follows the live tensors; both figures
are recorded.

Run::

    python benchmarks/bench_spikformer.py --batch 16 --rounds 3 --returning-allocator \
        --out spikformer.json

The committed record is ``benchmarks/results/spikformer_cpu.json``; without ``--out`` nothing is
written.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

LIBRARIES = ("snn", "spikingjelly")
RESULT = Path(__file__).resolve().parent / "results" / "spikformer_cpu.json"
RETURNING_ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": "131072"}
"""glibc setting of ``--returning-allocator``: a fixed mmap threshold (no dynamic raise), so
freed blocks of 128 KiB or more go back to the system at once."""


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class _RssSampler(threading.Thread):
    """Samples the resident set every millisecond until stopped; keeps the maximum."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss_mb()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.001):
            self.peak = max(self.peak, _rss_mb())

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, _rss_mb())
        return self.peak


def _build(library: str, steps: int):
    import torch

    torch.manual_seed(0)
    if library == "snn":
        import snn
        from snn.models import spikformer_cifar10

        model = spikformer_cifar10()

        def step(x):
            snn.reset(model)
            return model(x.unsqueeze(0).repeat(steps, 1, 1, 1, 1))
    else:
        from spikingjelly.activation_based import functional
        from spikingjelly.activation_based.model.spikformer import spikformer_cifar10

        model = spikformer_cifar10(T=steps)

        def step(x):
            functional.reset_net(model)
            return model(x)

    return model, step


def child(library: str, batch: int, steps: int, repeats: int, threads: int) -> dict:
    """One fresh process: the first training step's memory, then ``repeats`` timed steps."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    kernels = None
    if library == "snn":
        try:  # the fused CPU kernels get the same thread budget as PyTorch
            import numba

            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        except ImportError:
            pass
        from snn.cpu_kernels.warmup import use_kernels

        kernels = use_kernels()  # time the kernels whatever the state of the cache
    model, step = _build(library, steps)
    model.train()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)

    def train_step(n: int = batch) -> None:
        model.zero_grad(set_to_none=True)
        out = step(x[:n])
        F.cross_entropy(out.mean(0), y[:n]).backward()

    train_step(1)  # warm-up: compilation and library set-up, outside the measurements
    model.zero_grad(set_to_none=True)
    before = _rss_mb()
    sampler = _RssSampler()
    sampler.start()
    t0 = time.perf_counter()
    train_step()
    first = time.perf_counter() - t0
    step_peak = sampler.stop()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        train_step()
        times.append(time.perf_counter() - t0)
    return {
        "library": library, "first_step_s": first, "step_s": times,
        "step_peak_increase_mb": step_peak - before, "process_peak_mb": _peak_mb(),
        "parameters": sum(p.numel() for p in model.parameters()),
        **({"cpu_kernels": kernels} if kernels is not None else {}),
    }


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="time steps T")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--repeats", type=int, default=1, help="timed steps per process")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"JSON record (nothing is written without it; committed: {RESULT})")
    parser.add_argument("--returning-allocator", action="store_true",
                        help="also measure every process with glibc returning freed blocks "
                             f"to the system ({RETURNING_ALLOCATOR})")
    parser.add_argument("--child", choices=LIBRARIES, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.steps < 1 or args.rounds < 1 or args.repeats < 1:
        parser.error("--batch, --steps, --rounds and --repeats must be >= 1")
    if args.child:
        print(json.dumps(child(args.child, args.batch, args.steps, args.repeats, args.threads)))
        return 0

    runs: dict[str, list[dict]] = {lib: [] for lib in LIBRARIES}
    returning: dict[str, list[dict]] = {lib: [] for lib in LIBRARIES}
    loads = []
    allocators = ("default", "returning") if args.returning_allocator else ("default",)
    for r in range(args.rounds):
        order = LIBRARIES if r % 2 == 0 else LIBRARIES[::-1]
        for allocator in allocators:
            for lib in order:
                cmd = [sys.executable, __file__, "--child", lib, "--batch", str(args.batch),
                       "--steps", str(args.steps), "--repeats", str(args.repeats),
                       "--threads", str(args.threads)]
                env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])
                       + os.pathsep + os.environ.get("PYTHONPATH", "")}
                if allocator == "returning":
                    env.update(RETURNING_ALLOCATOR)
                loads.append(os.getloadavg()[0])
                done = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                      check=False)
                if done.returncode:
                    print(done.stderr, file=sys.stderr)
                    return 1
                into = runs if allocator == "default" else returning
                into[lib].append(json.loads(done.stdout.strip().splitlines()[-1]))
                last = into[lib][-1]
                print(f"round {r + 1} {allocator:9s} {lib:12s} step "
                      f"{statistics.median(last['step_s']):.2f} s  "
                      f"peak +{last['step_peak_increase_mb']:.0f} MB", flush=True)

    summary = {}
    for lib, items in runs.items():
        summary[lib] = {
            "parameters": items[0]["parameters"],
            "step_s": _spread([t for it in items for t in it["step_s"]]),
            "step_peak_increase_mb": _spread([it["step_peak_increase_mb"] for it in items]),
            "process_peak_mb": _spread([it["process_peak_mb"] for it in items]),
        }
    ours, peer = summary["snn"], summary["spikingjelly"]
    ratios = {
        "time_ours_over_spikingjelly": ours["step_s"]["median"] / peer["step_s"]["median"],
        "memory_ours_over_spikingjelly": (ours["step_peak_increase_mb"]["median"]
                                          / peer["step_peak_increase_mb"]["median"]),
    }
    if args.returning_allocator:
        mem = {lib: _spread([it["step_peak_increase_mb"] for it in items])
               for lib, items in returning.items()}
        ratios["memory_ours_over_spikingjelly_returning_allocator"] = (
            mem["snn"]["median"] / mem["spikingjelly"]["median"])
    import spikingjelly
    import torch

    record = {
        "benchmark": "spikformer-4-384 CIFAR-10 configuration, one training step "
                     "(forward + cross-entropy + backward)",
        "snn_configuration": "default (snn.layers.lean: spiking layers keep packed spikes "
                             "for backward; gradients bit-identical to the plain modules)",
        "batch": args.batch, "steps": args.steps, "image": [3, 32, 32],
        "rounds": args.rounds, "repeats_per_process": args.repeats,
        "summary": summary, "ratios": ratios, "runs": runs,
        "torch_threads": args.threads, "cpu_count": os.cpu_count(),
        "allocator_default": "glibc malloc as configured (freed heap memory stays resident)",
        "load_average_1min_at_each_start": loads, "load_average_at_end": os.getloadavg(),
        "torch": torch.__version__, "spikingjelly": getattr(spikingjelly, "__version__", "?"),
        "python": platform.python_version(), "platform": platform.platform(),
        "processor": platform.processor(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if args.returning_allocator:
        record["returning_allocator"] = {
            "environment": RETURNING_ALLOCATOR,
            "what": "the same first full-batch step with glibc returning every freed block "
                    "of 128 KiB or more to the system, so the resident set follows the live "
                    "tensors (the default keeps freed heap memory resident)",
            "step_peak_increase_mb": mem, "runs": returning,
        }
    print(json.dumps(ratios, indent=1))
    if args.out is not None:
        from snn._files import atomic_open

        with atomic_open(args.out, "w") as f:
            f.write(json.dumps(record, indent=1))
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
