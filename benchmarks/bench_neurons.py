"""Neuron-only benchmark: LIF forward + backward over ``[T, B, N]``, every library in one run.

Usage::

    python benchmarks/bench_neurons.py                 # CPU sweep (and GPU when present)
    python benchmarks/bench_neurons.py --device cuda --sizes 500x16x16384
    python benchmarks/bench_neurons.py --peers snn-fused,spikingjelly --repeat 5

Prints, per size, each library's time, the ratio of each peer's time to ours, the bytes kept
for backward per neuron-step, and the fraction of the memory-bandwidth floor our fused kernel
reaches; writes a JSON record under ``benchmarks/results/`` (device, versions, sizes).

The LIF layers of each library sit behind one interface (also used by
``bench_open_neuromorphic.py``). Every entry builds a callable ``run(x) -> spikes`` over a
time-first input ``[T, B, N]`` for the same neuron: a LIF with per-step decay
``beta = 1 - 1/tau`` (tau = 2), no input decay, threshold 1, reset by subtraction, arctan
surrogate. Norse has no multi-step LIF without a synaptic current; its entry is its standard
``norse.torch.LIF`` (current-based), said in the label. Peers that are not installed are
reported as skipped with the reason.

Also here: the machine's memory bandwidth, and the bytes a forward pass keeps for backward
(measured with ``torch.autograd.graph.saved_tensors_hooks`` on every library alike).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout: benchmark this checkout's snn
    sys.path.insert(0, str(REPO))

from snn.cpu_kernels.warmup import use_kernels  # noqa: E402

TAU = 2.0
BETA = 1.0 - 1.0 / TAU

Runner = Callable[[torch.Tensor], torch.Tensor]


def _snn(backend: str) -> Callable[[torch.device], Runner]:
    def build(device: torch.device) -> Runner:
        import snn

        neuron = snn.LIF(beta=BETA, reset="subtract", surrogate="atan", backend=backend)

        def run(x: torch.Tensor) -> torch.Tensor:
            neuron.reset_state()
            return neuron(x)

        return run

    return build


def _sj_node(device: torch.device) -> Runner:
    from spikingjelly.activation_based import neuron, surrogate

    node = neuron.LIFNode(tau=TAU, decay_input=False, v_threshold=1.0, v_reset=None,
                          surrogate_function=surrogate.ATan(), step_mode="m").to(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        node.reset()
        return node(x)

    return run


def _sj_reference(device: torch.device) -> Runner:
    from spikingjelly._ops.lif.reference import multi_step
    from spikingjelly.activation_based import surrogate

    sg = surrogate.ATan()

    def run(x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x[0])
        return multi_step(x, v, TAU, False, 1.0, None, sg, False)[0]

    return run


def _snntorch(device: torch.device) -> Runner:
    import snntorch
    from snntorch import surrogate

    lif = snntorch.Leaky(beta=BETA, threshold=1.0, spike_grad=surrogate.atan(),
                         reset_mechanism="subtract").to(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        mem = lif.init_leaky()
        out = []
        for t in range(x.shape[0]):
            spk, mem = lif(x[t], mem)
            out.append(spk)
        return torch.stack(out)

    return run


def _norse(device: torch.device) -> Runner:
    from norse.torch import LIF, LIFParameters

    # tau_mem_inv * dt = 1 / tau: the membrane decays like the other entries'
    lif = LIF(p=LIFParameters(tau_mem_inv=torch.tensor(1.0 / TAU / 1e-3),
                              v_th=torch.tensor(1.0), v_reset=torch.tensor(0.0)),
              dt=1e-3).to(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        return lif(x)[0]

    return run


PEERS: dict[str, tuple[str, str, Callable[[torch.device], Runner]]] = {
    # key: (label, package whose version is reported, builder)
    "snn-fused": ("snn LIF (auto: numba on CPU / cupy on CUDA)", "snn", _snn("auto")),
    "snn-torch": ("snn LIF (torch reference loop)", "snn", _snn("torch")),
    "spikingjelly": ("spikingjelly LIFNode multi-step (default dispatch)", "spikingjelly",
                     _sj_node),
    "spikingjelly-torch": ("spikingjelly LIF torch reference loop", "spikingjelly",
                           _sj_reference),
    "snntorch": ("snntorch Leaky (python time loop)", "snntorch", _snntorch),
    "norse": ("norse LIF (current-based, python time loop)", "norse", _norse),
}


def version(package: str) -> str:
    if package == "snn":
        import snn

        return snn.__version__
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"type": device.type, "torch": torch.__version__,
                            "python": platform.python_version(),
                            "machine": platform.machine(), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        try:
            with open("/proc/cpuinfo") as f:
                info["name"] = next(
                    (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                    platform.processor(),
                )
        except OSError:
            info["name"] = platform.processor()
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def memory_bandwidth(device: torch.device, nbytes: int = 1 << 29) -> float:
    """Copy bandwidth in bytes/s (read + write counted): the best of several copies of a
    ``nbytes`` buffer, by ``torch.Tensor.copy_`` and, on CPU, also by a numpy copy."""
    n = nbytes // 4
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    copies: list[Callable[[], Any]] = [lambda: dst.copy_(src)]
    if device.type == "cpu":
        import numpy as np

        a, b = src.numpy(), dst.numpy()
        copies.append(lambda: np.copyto(b, a))
    best = float("inf")
    for copy in copies:
        copy()
        for _ in range(5):
            sync(device)
            t0 = time.perf_counter()
            copy()
            sync(device)
            best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


def saved_bytes(run: Runner, x: torch.Tensor) -> tuple[int, int]:
    """Bytes of distinct storages saved for backward by one forward pass: ``(all, excluding
    the input's own storage)``."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = run(x)
    del out
    total = sum(seen.values())
    own = seen.get(x.untyped_storage().data_ptr(), 0)
    return total, total - own


FAULTS: dict[str, list[int]] = {}
"""Minor page faults of each timed call, by library (filled by :func:`time_interleaved`)."""


def _faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _once(run: Runner, x: torch.Tensor, key: str = "") -> float:
    """Seconds of one forward + ``sum().backward()`` (its page faults go to FAULTS)."""
    x.grad = None
    sync(x.device)
    f0 = _faults()
    t0 = time.perf_counter()
    run(x).sum().backward()
    sync(x.device)
    elapsed = time.perf_counter() - t0
    FAULTS.setdefault(key, []).append(_faults() - f0)
    return elapsed


def spread(times: list[float]) -> dict[str, float]:
    """Median, quartiles and extremes of repeated timings."""
    t = sorted(times)

    def q(f: float) -> float:
        k = (len(t) - 1) * f
        lo, hi = int(k), min(int(k) + 1, len(t) - 1)
        return t[lo] + (t[hi] - t[lo]) * (k - lo)

    return {"median": q(0.5), "q1": q(0.25), "q3": q(0.75), "min": t[0], "max": t[-1]}


def time_interleaved(runs: dict[str, Runner], x: torch.Tensor, repeat: int
                     ) -> dict[str, list[float]]:
    """``repeat`` rounds; each round times every library once, in an order rotated per
    round, so that load changes on a shared machine hit every library alike. One untimed
    warm-up call each first."""
    for run in runs.values():
        _once(run, x)
    keys = list(runs)
    times: dict[str, list[float]] = {k: [] for k in keys}
    for r in range(repeat):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            times[k].append(_once(runs[k], x, k))
    return times


def bytes_moved(dtype: torch.dtype, device: torch.device, scalar_grad: bool = True) -> int:
    """Bytes per neuron-step our fused LIF moves through main memory in forward + backward.

    CUDA engine: forward reads ``x`` and writes spikes and ``h``; backward reads ``h`` and
    writes the input gradient. CPU engine: forward reads ``x`` and writes spikes; backward
    reads ``x`` again (it recomputes ``h`` in cache) and writes the input gradient. Both also
    read the output gradient unless it is an expanded scalar (``sum().backward()``)."""
    size = torch.empty((), dtype=dtype).element_size()
    streams = 4 if device.type == "cpu" else 5
    return size * (streams + (0 if scalar_grad else 1))


def set_threads(n: int | None) -> int:
    """Use ``n`` threads in torch and numba (``None``: leave the defaults); returns the count.

    On a machine shared with other jobs, thread pools that spin at barriers lose most of their
    time to descheduled threads; one thread per library keeps comparisons meaningful there."""
    if n is not None:
        torch.set_num_threads(n)
        try:
            import numba

            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        except ImportError:
            pass
    return torch.get_num_threads()


def parse_sizes(text: str) -> list[tuple[int, int, int]]:
    sizes = []
    for item in text.split(","):
        try:
            T, B, N = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise SystemExit(
                f"--sizes: expected TxBxN items like 256x32x16384, got {item!r}") from None
        sizes.append((T, B, N))
    return sizes


def bench_size(device: torch.device, dtype: torch.dtype, size: tuple[int, int, int],
               peers: list[str], repeat: int, bandwidth: float) -> dict[str, Any]:
    T, B, N = size
    torch.manual_seed(0)
    x = (torch.randn(T, B, N, device=device) * 0.8 + 0.4).to(dtype).requires_grad_()
    rows: dict[str, Any] = {}
    runs: dict[str, Runner] = {}
    for key in peers:
        label, package, build = PEERS[key]
        try:
            run = build(device)
            total, without_input = saved_bytes(run, x)
        except Exception as exc:  # a peer that cannot run this configuration
            rows[key] = {"label": label, "skipped": f"{type(exc).__name__}: {exc}"}
            print(f"  {label:55s} skipped: {type(exc).__name__}: {exc}")
            continue
        runs[key] = run
        steps = T * B * N
        rows[key] = {
            "label": label, "version": version(package),
            "saved_bytes_per_neuron_step": total / steps,
            "saved_bytes_per_neuron_step_excluding_input": without_input / steps,
        }
    load_before = os.getloadavg()
    FAULTS.clear()
    times = time_interleaved(runs, x, repeat)
    load_after = os.getloadavg()
    for key, ts in times.items():
        stats = spread(ts)
        faults = sorted(FAULTS.get(key, [0]))
        rows[key].update(seconds=stats["median"], spread=stats, times=ts, runs=len(ts),
                         minor_page_faults_median=faults[len(faults) // 2])
    ours = rows.get("snn-fused", {}).get("seconds")
    moved = bytes_moved(dtype, device)
    floor = moved * T * B * N / bandwidth
    for row in rows.values():
        if "seconds" not in row:
            continue
        if ours:
            row["time_over_ours"] = row["seconds"] / ours
        sp = row["spread"]
        print(f"  {row['label']:55s} {row['seconds'] * 1e3:10.1f} ms "
              f"[{sp['q1'] * 1e3:.0f}-{sp['q3'] * 1e3:.0f}]"
              + (f"  x{row['time_over_ours']:6.2f}" if ours else "")
              + f"  kept {row['saved_bytes_per_neuron_step']:5.1f} B/step")
    result = {"T": T, "B": B, "N": N, "dtype": str(dtype).replace("torch.", ""),
              "libraries": rows, "bytes_moved_per_neuron_step": moved,
              "bandwidth_floor_seconds": floor, "load_average_before": load_before,
              "load_average_after": load_after, "repeats_interleaved": repeat}
    sj = [rows[k]["seconds"] for k in ("spikingjelly", "spikingjelly-torch")
          if "seconds" in rows.get(k, {})]
    if ours:
        result["fraction_of_bandwidth_floor"] = floor / ours
        print(f"  bandwidth floor {floor * 1e3:.1f} ms ({moved} B/neuron-step at "
              f"{bandwidth / 1e9:.1f} GB/s): ours reaches {floor / ours:.0%} of it")
        if sj:
            result["fastest_spikingjelly_over_ours"] = min(sj) / ours
            print(f"  fastest SpikingJelly path / ours: x{min(sj) / ours:.2f}")
    return result


def write_json(record: dict[str, Any], path: Path) -> None:
    """Write atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--sizes", default=None,
                        help="TxBxN,... (default: a sweep per device ending with the target)")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated subset of {list(PEERS)}")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    parser.add_argument("--repeat", type=int, default=7,
                        help="interleaved rounds (each times every library once)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch and numba (default: their defaults)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path to write the "
                        "record to (default: print only; committed records are only "
                        "replaced on purpose)")
    args = parser.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        parser.error(f"--peers: unknown {unknown}; expected names from {list(PEERS)}")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    threads = set_threads(args.threads)
    kernels = use_kernels()
    for name in devices:
        if name == "cuda" and not torch.cuda.is_available():
            print("GPU part skipped: torch.cuda.is_available() is False on this machine")
            continue
        device = torch.device(name)
        dtype = getattr(torch, args.dtype)
        if device.type == "cpu" and dtype != torch.float32:
            print(f"CPU part skipped: the fused CPU path runs float32/float64, not {dtype}")
            continue
        sizes = parse_sizes(args.sizes) if args.sizes else DEFAULT_SIZES[name]
        bandwidth = memory_bandwidth(device)
        info = device_info(device)
        print(f"== {name}: {info.get('name')}  copy bandwidth {bandwidth / 1e9:.1f} GB/s  "
              f"threads {threads}  load average {os.getloadavg()[0]:.1f}")
        results = []
        for size in sizes:
            print(f"-- LIF fwd+bwd T={size[0]} B={size[1]} N={size[2]} {args.dtype}")
            results.append(bench_size(device, dtype, size, peers, args.repeat, bandwidth))
        record = {
            "benchmark": "neuron-only LIF forward+backward",
            "device": info, "bandwidth_bytes_per_s": bandwidth,
            "versions": {PEERS[p][1]: version(PEERS[p][1]) for p in peers},
            "numba": version("numba"), "cupy": version("cupy-cuda12x"),
            "loss": "spikes.sum().backward()", "repeat": args.repeat, "threads": threads,
            "env": {k: os.environ[k] for k in ENV_OF_NOTE if k in os.environ},
            "load_average": os.getloadavg(), "cpu_kernels": kernels, "results": results,
        }
        if args.out is not None:
            out = args.out if len(devices) == 1 else args.out.with_name(
                f"{args.out.stem}_{name}{args.out.suffix}")
            write_json(record, out)
            print(f"wrote {out}")
    return 0


RESULTS = Path(__file__).resolve().parent / "results"
ENV_OF_NOTE = ("THP_MEM_ALLOC_ENABLE", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS",
               "NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY")
DEFAULT_SIZES = {
    "cpu": [(64, 32, 4096), (256, 32, 4096), (256, 32, 16384)],
    "cuda": [(64, 32, 4096), (256, 32, 16384), (500, 16, 16384), (1024, 64, 16384)],
}


if __name__ == "__main__":
    sys.exit(main())
