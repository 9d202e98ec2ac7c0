"""Peak memory and time of one training step: the plain path, ``snn.memory_efficient`` and
SpikingJelly 2.0's ``memopt`` on the same model, input and seed.

Run by hand from the repository root::

    python benchmarks/bench_memory.py [--repeats 3] [--out benchmarks/results/memory_cpu.json]

Every configuration runs in a fresh process (``--child``), so that the measurements do not
contaminate each other: the process builds the model and the input and runs one training step
(forward, loss, backward). The step's peak memory is the largest amount of tensor memory live
at once during the step, as PyTorch's CPU allocator reports it to the profiler
(``total_allocated`` of its allocation events, counted from the start of the step). The growth
of the peak resident set size (``getrusage``) over the step is recorded too, with
``MALLOC_MMAP_THRESHOLD_`` set so that large blocks go back to the system when freed; it also
includes the allocator's and the libraries' one-time workspaces. The same process then times
``--steps`` further steps (median). Configurations run interleaved, ``--repeats`` rounds; the
record holds medians with min/max over the rounds, the thread count and the load average, and
a hash of every gradient (equal hashes: bit-identical gradients).

Models come from the zoo by name (``--model``); :data:`CASES` says how to build each and which
block type SpikingJelly's ``memopt`` checkpoints. The spiking transformers join by adding their
zoo name to :data:`CASES`.

Without ``--out`` the record is printed, and ``benchmarks/results/`` is left alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("plain", "snn_memory_efficient", "spikingjelly_memopt")


@dataclass(frozen=True)
class Case:
    """How to benchmark one zoo model.

    Attributes:
        kwargs: builder options (besides ``num_classes``).
        input_shape: one sample's frame ``(C, H, W)`` (or features).
        block: dotted import path of the block class SpikingJelly's memopt checkpoints.
    """

    kwargs: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] = (3, 32, 32)
    block: str = "snn.models.sew_resnet.SEWBasicBlock"


CASES: dict[str, Case] = {
    "sew_resnet18": Case({"stem": "small", "in_channels": 3}, (3, 32, 32)),
    # a reduced Spikformer (the CIFAR-10 layout at width 128, 2 blocks)
    "spikformer_cifar10": Case({"embed_dim": 128, "num_heads": 4, "depth": 2}, (3, 32, 32),
                               "snn.models.spiking_transformers.SpikformerBlock"),
}


def _import(path: str) -> Any:
    import importlib

    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _walk(nodes: Any) -> Any:
    for n in nodes:
        yield n
        yield from _walk(n.children)


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One configuration in this (fresh) process."""
    import torch

    import snn
    from snn.models import create_model

    torch.set_num_threads(args.threads)
    case = CASES[args.model]
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=10, **case.kwargs)
    snn.set_backend(model, "torch")  # the same neuron arithmetic in every configuration
    g = torch.Generator().manual_seed(1)
    x = torch.rand(args.steps_t, args.batch, *case.input_shape, generator=g)
    y = torch.randint(0, 10, (args.batch,), generator=g)
    if args.config == "snn_memory_efficient":
        snn.memory_efficient(model)
    elif args.config == "spikingjelly_memopt":
        from spikingjelly.activation_based import memopt

        def example(m: torch.nn.Module) -> Any:
            snn.reset(m)
            with torch.no_grad():
                return m(x)

        memopt.optimize_memory(
            model, (_import(case.block),), example, level=1, checkpoint_budget="memory"
        )

    def step() -> None:
        snn.reset(model)
        model.zero_grad(set_to_none=True)
        out = model(x)
        torch.nn.functional.cross_entropy(out.mean(0), y).backward()

    before = _rss_kib()
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
    ) as prof:
        step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    allocator_peak = max(
        (
            n.extra_fields.total_allocated
            for n in _walk(prof.profiler.kineto_results.experimental_event_tree())
            if type(n.extra_fields).__name__ == "_ExtraFields_Allocation"
        ),
        default=0,
    )
    digest = hashlib.sha256()
    for _name, p in sorted(model.named_parameters()):
        digest.update(p.grad.numpy().tobytes())
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {
        "peak_step_mib": allocator_peak / 2**20,
        "rss_peak_step_mib": (peak - before) / 1024,
        "baseline_mib": before / 1024,
        "step_seconds": statistics.median(times) if times else None,
        "grad_sha256": digest.hexdigest(),
    }


def run_child(args: argparse.Namespace, config: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", config, "--model", args.model]
    cmd += ["--batch", str(args.batch), "--T", str(args.steps_t), "--steps", str(args.steps)]
    cmd += ["--threads", str(args.threads)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{config} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="sew_resnet18", choices=sorted(CASES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--T", dest="steps_t", type=int, default=4, help="time steps")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per process")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--child", default=None, choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON record here")
    args = parser.parse_args()
    if args.child:
        args.config = args.child
        print(json.dumps(child(args)))
        return

    rounds: dict[str, list[dict[str, Any]]] = {c: [] for c in args.configs}
    load = [os.getloadavg()]
    for r in range(args.repeats):
        for config in args.configs:
            rounds[config].append(run_child(args, config))
            res = rounds[config][-1]
            print(
                f"round {r + 1} {config:22s} peak {res['peak_step_mib']:8.1f} MiB  "
                f"step {res['step_seconds']:6.2f} s",
                flush=True,
            )
        load.append(os.getloadavg())
    results: dict[str, Any] = {}
    for config, runs in rounds.items():
        results[config] = {
            "peak_step_mib": _summary([x["peak_step_mib"] for x in runs]),
            "step_seconds": _summary([x["step_seconds"] for x in runs]),
            "grad_sha256": sorted({x["grad_sha256"] for x in runs}),
            "runs": runs,
        }
    plain = results.get("plain")
    if plain:
        base_mem = plain["peak_step_mib"]["median"]
        base_time = plain["step_seconds"]["median"]
        for res in results.values():
            res["memory_vs_plain"] = res["peak_step_mib"]["median"] / base_mem
            res["time_vs_plain"] = res["step_seconds"]["median"] / base_time
            res["gradients_equal_plain"] = res["grad_sha256"] == plain["grad_sha256"]
    import torch

    try:
        from importlib.metadata import version

        sj_version = version("spikingjelly")
    except Exception:  # pragma: no cover - not installed
        sj_version = None
    record = {
        "benchmark": "peak memory and time of one training step (forward + backward)",
        "model": args.model,
        "model_kwargs": CASES[args.model].kwargs,
        "input": [args.steps_t, args.batch, *CASES[args.model].input_shape],
        "loss": "cross-entropy of the time-mean output",
        "memory": "peak_step_mib: largest live tensor memory during the step (PyTorch CPU "
        "allocator, via the profiler's allocation events); rss_peak_step_mib: ru_maxrss of a "
        "fresh process minus its resident size before the step",
        "spikingjelly_memopt": "optimize_memory(level=1, checkpoint_budget='memory', "
        f"targets=({CASES[args.model].block.rsplit('.', 1)[1]},), compress=True)",
        "neuron_backend": "torch",
        "repeats": args.repeats,
        "timed_steps_per_process": args.steps,
        "threads": args.threads,
        "load_average": load,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "spikingjelly": sj_version,
        },
        "machine": platform.machine(),
        "results": results,
    }
    text = json.dumps(record, indent=1)
    if args.out:
        sys.path.insert(0, str(REPO))
        from snn._files import atomic_open

        args.out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(args.out, "w") as f:
            f.write(text + "\n")
        print(f"wrote {args.out}")
    else:
        print(text)
    for config, res in results.items():
        print(
            f"{config:22s} peak {res['peak_step_mib']['median']:8.1f} MiB "
            f"({res.get('memory_vs_plain', float('nan')):.2f}x plain)  step "
            f"{res['step_seconds']['median']:6.2f} s "
            f"({res.get('time_vs_plain', float('nan')):.2f}x)"
            f"  gradients equal plain: {res.get('gradients_equal_plain')}"
        )


if __name__ == "__main__":
    main()
