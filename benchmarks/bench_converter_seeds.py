"""ANN-to-SNN conversion against SpikingJelly's converter over several seeds and architectures.

One network and one split can flatter either side, so this benchmark trains three small CNNs on
scikit-learn's 8x8 digits for each of several seeds (the seed sets the train/test split, the
initial weights and the batch order) and converts every trained ANN with our default methods and
with SpikingJelly's rate-coding converter in each of its modes, on the very same ANN and the same
calibration images:

- architectures: ``vgg_maxpool`` (VGG-like, max pooling), ``vgg_avgpool`` (the same with average
  pooling), ``resnet`` (stem, three residual blocks, global average pooling);
- ours: ``max``, ``percentile`` (the default) and ``percentile channelwise`` (all with the
  default initial membrane of half the threshold);
- SpikingJelly 2.0 ``RateCodingRecipe``: modes ``"Max"``, ``"99.9%"`` and ``"99.9%"`` channel-wise
  (``channel_wise=True``).

For every (architecture, method, T) the record holds each seed's test accuracy and their mean,
sample standard deviation, minimum, maximum and n; ``peer_wins`` lists every T where a
SpikingJelly mode has a higher mean than our method of the same normalisation, and where the
best SpikingJelly mode beats our default. The networks are trained briefly (a few epochs) so the
whole run fits in about a quarter of an hour on two loaded cores; the ANN accuracies are in the
record.

Run from the repository root::

    python benchmarks/bench_converter_seeds.py [--seeds 0 1 2] [--epochs 10] [--width 8]
        [--out benchmarks/results/converter_digits_seeds.json]

or one seed per process (``--seeds 1 --partial seed1.json``) and then
``--merge seed0.json seed1.json seed2.json --out ...``. Nothing is written without ``--out`` or
``--partial``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_converter import BasicBlock, accuracy, load_digits, train

from snn._files import atomic_write_text
from snn.converters import convert

TIMESTEPS = [1, 2, 4, 8, 16, 32, 64]

OURS = {
    "max": dict(method="max"),
    "percentile": dict(method="percentile"),
    "percentile channelwise": dict(method="percentile", channelwise=True),
}
"""Our methods: name -> keyword arguments of :func:`snn.converters.convert`."""

PEER = {
    "Max": dict(mode="Max"),
    "99.9%": dict(mode="99.9%"),
    "99.9% channel-wise": dict(mode="99.9%", channel_wise=True),
}
"""SpikingJelly's modes: name -> keyword arguments of ``ann2snn.RateCodingRecipe``."""

PAIRS = [
    ("max", "Max"),
    ("percentile", "99.9%"),
    ("percentile channelwise", "99.9% channel-wise"),
]
"""(ours, SpikingJelly) with the same normalisation statistic and granularity."""

DEFAULT = "percentile"

BATCH = 512
"""Test images per simulated batch (the digits test split, 360 images, is one batch)."""


# -- models -----------------------------------------------------------------------------------
def vgg(pool: type[nn.Module], width: int) -> nn.Module:
    """VGG-like: conv-BN-ReLU x2, pool, conv-BN-ReLU x2, pool, linear-ReLU, linear."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(1, width), *block(width, width), pool(2),
        *block(width, 2 * width), *block(2 * width, 2 * width), pool(2),
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(2 * width * 2 * 2, 4 * width), nn.ReLU(),
        nn.Dropout(0.2), nn.Linear(4 * width, 10),
    )


class ResNet(nn.Module):
    """ResNet-like: a stem, two residual blocks (the second with stride 2 and a 1x1 projection
    shortcut), global average pooling and a linear classifier."""

    def __init__(self, width: int):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                                  nn.ReLU())
        self.layers = nn.Sequential(BasicBlock(w, w, 1, nn.ReLU),
                                    BasicBlock(w, 2 * w, 2, nn.ReLU))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * w, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


ARCHITECTURES = {
    "vgg_maxpool": lambda width: vgg(nn.MaxPool2d, width),
    "vgg_avgpool": lambda width: vgg(nn.AvgPool2d, width),
    "resnet": ResNet,
}


# -- accuracy curves --------------------------------------------------------------------------
def ours_curve(ann: nn.Module, calib: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
               kwargs: dict) -> dict[int, float]:
    """Accuracy at every T of :data:`TIMESTEPS` from one simulation of ``max(TIMESTEPS)``."""
    snn_model, _ = convert(ann, calib, **kwargs)
    correct = torch.zeros(max(TIMESTEPS), dtype=torch.long)
    with torch.no_grad():
        for xb, yb in zip(x.split(BATCH), y.split(BATCH)):
            out = snn_model.simulate(xb, max(TIMESTEPS))  # [T, B, 10]
            correct += (out.argmax(-1) == yb).sum(1)
    return {t: int(correct[t - 1]) / len(y) for t in TIMESTEPS}


def peer_curve(ann: nn.Module, calib: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
               kwargs: dict) -> dict[int, float]:
    """SpikingJelly's rate-coding converter on the same ANN and calibration images; the output
    is the mean of the outputs over the steps run (its own examples' readout)."""
    from spikingjelly.activation_based import ann2snn, functional

    loader = [(calib, torch.zeros(len(calib), dtype=torch.long))]
    recipe = ann2snn.RateCodingRecipe(dataloader=loader, **kwargs)
    snn_model = ann2snn.Converter(recipe=recipe, device="cpu").convert(copy.deepcopy(ann))
    snn_model.eval()
    correct = torch.zeros(max(TIMESTEPS), dtype=torch.long)
    with torch.no_grad():
        for xb, yb in zip(x.split(BATCH), y.split(BATCH)):
            functional.reset_net(snn_model)
            total = None
            for t in range(max(TIMESTEPS)):
                out = snn_model(xb)
                total = out if total is None else total + out
                correct[t] += (total.argmax(1) == yb).sum()
    return {t: int(correct[t - 1]) / len(y) for t in TIMESTEPS}


# -- statistics -------------------------------------------------------------------------------
def summary(values: list[float]) -> dict[str, float | int]:
    """Mean, sample standard deviation, minimum, maximum and n."""
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarise(runs: dict) -> dict:
    """``runs[arch][method][seed][T]`` -> ``[arch][method][T]`` summaries."""
    return {
        arch: {
            method: {t: summary([per_seed[t] for per_seed in seeds.values()]) for t in TIMESTEPS}
            for method, seeds in methods.items()
        }
        for arch, methods in runs.items()
    }


def peer_wins(stats: dict) -> list[dict]:
    """Every (architecture, T) where a SpikingJelly mode's mean accuracy is above ours: for the
    pairs of the same normalisation, and the best SpikingJelly mode against our default."""
    wins = []
    for arch, methods in stats.items():
        for t in TIMESTEPS:
            comparisons = [(f"ours: {a}", f"spikingjelly: {b}") for a, b in PAIRS]
            best = max(PEER, key=lambda m: methods[f"spikingjelly: {m}"][t]["mean"])
            comparisons.append((f"ours: {DEFAULT}", f"spikingjelly: {best}"))
            for ours, theirs in comparisons:
                a, b = methods[ours][t]["mean"], methods[theirs][t]["mean"]
                if b > a:
                    wins.append({"architecture": arch, "T": t, "ours": ours, "peer": theirs,
                                 "ours_mean": a, "peer_mean": b, "difference_points":
                                 100 * (b - a)})
    return wins


# -- main -------------------------------------------------------------------------------------
def run_seeds(args: argparse.Namespace, partial: Path | None = None) -> dict:
    """Train, convert and simulate for every seed of ``args.seeds``; the raw results
    (``{"runs", "ann", "seeds"}``), written to ``partial`` after every network when given."""
    raw: dict = {"seeds": [], "runs": {arch: {} for arch in ARCHITECTURES},
                 "ann": {arch: {} for arch in ARCHITECTURES}}
    for seed in args.seeds:
        x_tr, y_tr, x_te, y_te = load_digits(seed)
        g = torch.Generator().manual_seed(seed)
        calib = x_tr[torch.randperm(len(y_tr), generator=g)[: args.calibration]]
        for arch in args.architectures:
            build = ARCHITECTURES[arch]
            torch.manual_seed(seed)
            ann = build(args.width)
            seconds = train(ann, x_tr, y_tr, args.epochs, seed)
            start = time.perf_counter()
            runs = raw["runs"][arch]
            for name, kwargs in OURS.items():
                runs.setdefault(f"ours: {name}", {})[seed] = ours_curve(ann, calib, x_te, y_te,
                                                                       kwargs)
            for name, kwargs in PEER.items():
                runs.setdefault(f"spikingjelly: {name}", {})[seed] = peer_curve(
                    ann, calib, x_te, y_te, kwargs)
            raw["ann"][arch][seed] = {
                "accuracy": accuracy(ann, x_te, y_te), "train_seconds": seconds,
                "convert_and_simulate_seconds": time.perf_counter() - start,
                "parameters": sum(p.numel() for p in ann.parameters()),
                "load_average_1min": os.getloadavg()[0],
            }
            print(f"seed {seed} {arch}: ANN {100 * raw['ann'][arch][seed]['accuracy']:.2f}% "
                  f"(train {seconds:.0f} s, convert + simulate "
                  f"{raw['ann'][arch][seed]['convert_and_simulate_seconds']:.0f} s); ours "
                  f"{DEFAULT} T=8 {100 * runs[f'ours: {DEFAULT}'][seed][8]:.2f}%", flush=True)
            if partial is not None:
                atomic_write_text(partial, json.dumps(raw, indent=1) + "\n")
        raw["seeds"].append(seed)
    return raw


def merge(raws: list[dict]) -> dict:
    """One record of raw results (of disjoint seeds) with their statistics. A network counts for
    a seed once all its curves are in (a partial file written while a seed was running holds the
    networks finished so far), so ``n`` may differ between networks; it is in every summary.
    Networks with fewer than two seeds are left out and named under ``incomplete``."""
    runs: dict = {arch: {} for arch in ARCHITECTURES}
    anns: dict = {arch: {} for arch in ARCHITECTURES}
    for raw in raws:
        for arch in ARCHITECTURES:
            for seed, info in raw["ann"][arch].items():
                seed = int(seed)
                if seed in anns[arch]:
                    raise ValueError(f"seed {seed} of {arch} appears twice")
                anns[arch][seed] = info
                for method, per_seed in raw["runs"][arch].items():
                    curve = per_seed.get(seed, per_seed.get(str(seed)))
                    runs[arch].setdefault(method, {})[seed] = {int(t): v for t, v in
                                                              curve.items()}
    incomplete = {arch: sorted(per) for arch, per in anns.items() if len(per) < 2}
    for arch in incomplete:  # fewer than two seeds: no spread to report
        del anns[arch], runs[arch]
    if not anns:
        raise ValueError(f"no network has two seeds or more: {incomplete}")
    stats = summarise(runs)
    return {
        "benchmark": "ANN-to-SNN conversion, digits, several seeds and architectures",
        "timesteps": TIMESTEPS,
        "seeds": sorted({seed for per in anns.values() for seed in per}),
        "default_method": f"ours: {DEFAULT}",
        "pairs": [[f"ours: {a}", f"spikingjelly: {b}"] for a, b in PAIRS],
        "ann": {arch: {"per_seed": per, "accuracy": summary([v["accuracy"] for v in per.values()])}
                for arch, per in anns.items()},
        "runs": runs,
        "stats": stats,
        "peer_wins": peer_wins(stats),
        "incomplete": incomplete,
    }


def print_table(record: dict) -> None:
    for arch, methods in record["stats"].items():
        ann = record["ann"][arch]["accuracy"]
        print(f"\n== {arch}: ANN {100 * ann['mean']:.2f} +- {100 * ann['sd']:.2f}% "
              f"(n={ann['n']}); SNN accuracy mean +- sd over seeds (%)")
        print(f"{'method':<36}" + "".join(f"{'T=' + str(t):>13}" for t in TIMESTEPS))
        for method, per_t in methods.items():
            cells = "".join(
                f"{100 * per_t[t]['mean']:>7.2f}+-{100 * per_t[t]['sd']:<4.1f}" for t in TIMESTEPS
            )
            print(f"{method:<36}{cells}")
    print("\n== where SpikingJelly's mean is higher")
    for w in record["peer_wins"]:
        print(f"{w['architecture']:<12} T={w['T']:<3} {w['peer']} {100 * w['peer_mean']:.2f}% > "
              f"{w['ours']} {100 * w['ours_mean']:.2f}%")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--architectures", nargs="+", choices=list(ARCHITECTURES),
                   default=list(ARCHITECTURES))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--width", type=int, default=8, help="channels of the first conv layers")
    p.add_argument("--calibration", type=int, default=256, help="calibration images")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--partial", type=Path, default=None,
                   help="write the raw results of the seeds run so far here (no statistics); "
                   "several such files are combined with --merge")
    p.add_argument("--merge", type=Path, nargs="+", default=None,
                   help="combine partial files of disjoint seeds instead of running")
    p.add_argument("--out", type=Path, default=None, help="write the JSON record here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    start = time.perf_counter()
    if args.merge:
        record = merge([json.loads(path.read_text()) for path in args.merge])
        sources = [str(path) for path in args.merge]
    else:
        if len(args.seeds) < 2 and args.partial is None:
            p.error("--seeds needs at least two seeds to report a spread (or use --partial)")
        raw = run_seeds(args, args.partial)
        if args.partial is not None and len(args.seeds) < 2:
            print(f"wrote the raw results to {args.partial}")
            return
        record = merge([raw])
        sources = []
    import spikingjelly

    record["environment"] = {
        "torch": torch.__version__,
        "spikingjelly": getattr(spikingjelly, "__version__", "?"),
        "python": platform.python_version(), "machine": platform.platform(),
        "processor": platform.processor(), "threads": args.threads,
        "load_average_1_5_15min_start": list(load_start),
        "load_average_1_5_15min_end": list(os.getloadavg()),
        "epochs": args.epochs, "width": args.width, "calibration_images": args.calibration,
        "test_images": len(load_digits(record["seeds"][0])[3]),
        "merged_from": sources,
        "note": "per-network train and convert+simulate seconds and the 1-minute load average "
        "after each network are in ann.<arch>.per_seed",
    }
    if not args.merge:
        record["environment"]["total_seconds"] = time.perf_counter() - start
    print_table(record)
    if args.out:
        atomic_write_text(args.out, json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
