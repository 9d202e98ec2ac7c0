"""Time the operation counter against a plain forward pass and against the counters of NeuroBench
(``SynapticOperations``) and sinabs (synops hooks), on the same networks and inputs.

Run by hand from the repository root::

    python benchmarks/bench_energy.py [--repeats 5] [--out benchmarks/results/energy_counting.json]

Every figure is the median wall time of ``--repeats`` runs in this process; peers that are not
installed are reported as missing. The counts themselves are compared too (they must agree).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import snn
from snn.energy import count_ops, neurobench_metrics
from snn.models import resnet18
from snn.neurons.base import BaseNeuron


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def spiking_network() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(
        snn.TimeDistributed(nn.Conv2d(2, 32, 3, stride=2, padding=1)),
        snn.IF(threshold=0.5),
        snn.TimeDistributed(nn.Conv2d(32, 64, 3, padding=1), nn.MaxPool2d(2)),
        snn.IF(threshold=0.5),
        snn.TimeDistributed(nn.Flatten(), nn.Linear(64 * 8 * 8, 10)),
        snn.IF(threshold=0.5),
    )


def neurobench_counter(net: nn.Module, x: torch.Tensor, batch: int):
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import TorchModel

    def run():
        wrapped = TorchModel(net)
        wrapped.add_activation_module(BaseNeuron)
        wrapped.register_hooks()
        try:
            with torch.no_grad():
                preds = wrapped(x)
            return SynapticOperations()(wrapped, preds, (torch.zeros(batch), None))
        finally:
            wrapped.cleanup_hooks()

    return run


def sinabs_counter(net: nn.Module, x: torch.Tensor):
    from sinabs import hooks

    handles = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(hooks.conv_layer_synops_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(hooks.linear_layer_synops_hook))

    def run():
        with torch.no_grad():
            net(x)

    return run, handles


def bench(name: str, net: nn.Module, x: torch.Tensor, batch: int, repeats: int) -> dict:
    def forward():
        with torch.no_grad():
            net(x)
        snn.reset(net)

    def ours():
        counts = count_ops(net, x)
        snn.reset(net)
        return counts

    row: dict = {"network": name, "input_shape": list(x.shape)}
    row["forward_s"] = median_time(forward, repeats)
    row["ours_s"] = median_time(ours, repeats)
    metrics = neurobench_metrics(ours())
    row["ours_effective_acs"] = metrics["effective_acs"]
    row["ours_effective_macs"] = metrics["effective_macs"]
    try:
        run = neurobench_counter(net, x, batch)
        row["neurobench_s"] = median_time(lambda: (run(), snn.reset(net)), repeats)
        nb = run()
        snn.reset(net)
        row["neurobench_agrees"] = (
            nb["Effective_ACs"] == metrics["effective_acs"]
            and nb["Effective_MACs"] == metrics["effective_macs"]
        )
    except ImportError as err:
        row["neurobench_s"] = f"missing: {err}"
    try:
        run, handles = sinabs_counter(net, x)
        row["sinabs_s"] = median_time(lambda: (run(), snn.reset(net)), repeats)
        for h in handles:
            h.remove()
    except ImportError as err:
        row["sinabs_s"] = f"missing: {err}"
    for peer in ("neurobench_s", "sinabs_s", "forward_s"):
        if isinstance(row.get(peer), float):
            row[f"ours_over_{peer[:-2]}"] = row["ours_s"] / row[peer]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = []
    g = torch.Generator().manual_seed(0)
    snn_input = (torch.rand(8, 4, 2, 32, 32, generator=g) < 0.2).float()
    rows.append(bench("conv SNN, T=8, B=4, 32x32", spiking_network(), snn_input, 4, args.repeats))
    rows.append(bench("ResNet-18 (ANN), B=1, 224x224", resnet18().eval(),
                      torch.rand(1, 3, 224, 224, generator=g), 1, args.repeats))
    for row in rows:
        print(json.dumps(row, indent=1))
    if args.out is not None:
        record = {
            "benchmark": "energy counting time",
            "machine": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "load_average_1_5_15min": list(os.getloadavg()),
            "repeats": args.repeats,
            "rows": rows,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=args.out.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh, indent=2)
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
