"""ANN-to-SNN conversion on scikit-learn's 8x8 digits: accuracy against time steps.

Trains a small VGG-style CNN and a small ResNet (plain ReLU, and the same networks with QCFS
activations for conversion-aware training) on the CPU, converts each with every method of
``snn.converters`` and with SpikingJelly's converter on the very same trained ANN and the same
calibration images, and prints the accuracy-vs-T table. Targets checked at the end:

- conversion-aware training (QCFS, trained with 4 levels): SNN within 0.5 points of its ANN
  at T = 8, without and with post-conversion membrane calibration for T = 8;
- percentile normalisation on the plain ReLU network: within 1 point of the ANN at T = 64;
- ours at least as accurate as SpikingJelly's converter at every T (same normalisation).

Run: ``python benchmarks/bench_converter.py [--epochs 12] [--width 16] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snn.converters import QCFS, convert, evaluate

TIMESTEPS = [1, 2, 4, 8, 16, 32, 64]


# -- data -------------------------------------------------------------------------------------
def load_digits(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    d = sk_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)  # [N, 1, 8, 8] in [0, 1]
    y = torch.tensor(d.target, dtype=torch.long)
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=0.2, random_state=seed,
                                      stratify=d.target)
    return x[idx_tr], y[idx_tr], x[idx_te], y[idx_te]


# -- models -----------------------------------------------------------------------------------
Act = Callable[[], nn.Module]


def vgg(act: Act, width: int) -> nn.Module:
    """VGG-style: 4 conv layers (width, 2 x width channels) with BatchNorm, 2 max pools,
    2 linear layers."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), act()]

    return nn.Sequential(
        *block(1, width), *block(width, width), nn.MaxPool2d(2),
        *block(width, 2 * width), *block(2 * width, 2 * width), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(2 * width * 2 * 2, 4 * width), act(),
        nn.Dropout(0.2), nn.Linear(4 * width, 10),
    )


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, act: Act):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = act()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))
        self.act2 = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """Stem + 3 residual blocks (width, 2 x width channels) + global average pooling +
    linear."""

    def __init__(self, act: Act, width: int):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                                  act())
        self.layers = nn.Sequential(BasicBlock(w, w, 1, act), BasicBlock(w, 2 * w, 2, act),
                                    BasicBlock(2 * w, 2 * w, 1, act))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * w, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


# -- training ---------------------------------------------------------------------------------
def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> float:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * ((len(y) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 64):
            idx = perm[i:i + 64]
            xb = x[idx]
            # augmentation: random shifts by up to one pixel
            dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=g))
            xb = torch.roll(F.pad(xb, (1, 1, 1, 1)), (dy, dx), (2, 3))[:, :, 1:-1, 1:-1]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return time.perf_counter() - start


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


# -- SpikingJelly ---------------------------------------------------------------------------
def spikingjelly_curve(ann: nn.Module, calib: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                       mode: str) -> tuple[dict[int, float], float]:
    """SpikingJelly's rate-coding converter on the same ANN and calibration images."""
    from spikingjelly.activation_based import ann2snn, functional

    loader = [(calib, torch.zeros(len(calib), dtype=torch.long))]
    start = time.perf_counter()
    recipe = ann2snn.RateCodingRecipe(dataloader=loader, mode=mode)
    snn_model = ann2snn.Converter(recipe=recipe, device="cpu").convert(copy.deepcopy(ann))
    seconds = time.perf_counter() - start
    snn_model.eval()
    correct = torch.zeros(max(TIMESTEPS), dtype=torch.long)
    with torch.no_grad():
        for xb, yb in zip(x.split(256), y.split(256)):
            functional.reset_net(snn_model)
            total = None
            for t in range(max(TIMESTEPS)):
                out = snn_model(xb)
                total = out if total is None else total + out
                correct[t] += (total.argmax(1) == yb).sum()
    # exact fractions of counts, like snn.converters.evaluate (so equal counts compare equal)
    return {t: int(correct[t - 1]) / len(y) for t in TIMESTEPS}, seconds


# -- main -------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    x_tr, y_tr, x_te, y_te = load_digits(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    calib = x_tr[torch.randperm(len(y_tr), generator=g)[: args.calibration]]
    qcfs = lambda: QCFS(levels=args.levels, threshold=4.0)  # noqa: E731
    results: dict = {"timesteps": TIMESTEPS, "models": {}}
    for arch, build in (("vgg", vgg), ("resnet", ResNet)):
        torch.manual_seed(args.seed)
        relu_ann = build(nn.ReLU, args.width)
        t_relu = train(relu_ann, x_tr, y_tr, args.epochs, args.seed)
        torch.manual_seed(args.seed)
        qcfs_ann = build(qcfs, args.width)
        t_qcfs = train(qcfs_ann, x_tr, y_tr, args.epochs, args.seed)
        entry: dict = {
            "parameters": sum(p.numel() for p in relu_ann.parameters()),
            "train_seconds": {"relu": t_relu, "qcfs": t_qcfs},
            "ann_accuracy": {"relu": accuracy(relu_ann, x_te, y_te),
                             "qcfs": accuracy(qcfs_ann, x_te, y_te)},
            "methods": {},
        }
        print(f"\n== {arch}: {entry['parameters']} parameters; ANN test accuracy ReLU "
              f"{100 * entry['ann_accuracy']['relu']:.2f}%, QCFS(L={args.levels}) "
              f"{100 * entry['ann_accuracy']['qcfs']:.2f}% (train {t_relu:.0f} s + "
              f"{t_qcfs:.0f} s)")
        ours = {
            "max (v0=0)": (relu_ann, dict(method="max", v_init=0.0)),
            "max": (relu_ann, dict(method="max")),
            "percentile": (relu_ann, dict(method="percentile")),
            "percentile channelwise": (relu_ann, dict(method="percentile", channelwise=True)),
            "percentile + bias calibration": (
                relu_ann, dict(method="percentile", calibration="bias", calibration_steps=16)),
            "qcfs": (qcfs_ann, dict()),
            "qcfs + membrane calibration": (
                qcfs_ann, dict(calibration="membrane", calibration_steps=8)),
        }
        for name, (ann, kwargs) in ours.items():
            start = time.perf_counter()
            snn_model, _ = convert(ann, calib, **kwargs)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            res = evaluate(ann, snn_model, (x_te, y_te), timesteps=TIMESTEPS)
            entry["methods"][f"ours: {name}"] = {
                "ann": "qcfs" if ann is qcfs_ann else "relu",
                "convert_seconds": seconds, "evaluate_seconds": time.perf_counter() - start,
                "accuracy": res.snn_accuracy, "agreement": res.agreement,
                "normalised_ann_accuracy": res.analog_accuracy,
                "mean_firing_rate": {t: float(np.mean([r[t] for r in res.firing_rates.values()]))
                                     for t in TIMESTEPS},
            }
        for mode in ("Max", "99.9%"):
            curve, seconds = spikingjelly_curve(relu_ann, calib, x_te, y_te, mode)
            entry["methods"][f"spikingjelly: {mode}"] = {
                "ann": "relu", "convert_seconds": seconds, "accuracy": curve}
        results["models"][arch] = entry
        print_table(entry)
    results["checks"] = checks(results)
    return results


def print_table(entry: dict) -> None:
    head = f"{'method':<36}{'ANN':>7}" + "".join(f"{'T=' + str(t):>8}" for t in TIMESTEPS)
    print(head)
    for name, m in entry["methods"].items():
        ann = entry["ann_accuracy"][m["ann"]]
        row = "".join(f"{100 * m['accuracy'][t]:>8.2f}" for t in TIMESTEPS)
        print(f"{name:<36}{100 * ann:>7.2f}{row}")


def checks(results: dict) -> dict:
    out = {}
    print("\n== targets")
    for arch, e in results["models"].items():
        ann_q, ann_r = e["ann_accuracy"]["qcfs"], e["ann_accuracy"]["relu"]
        q8 = e["methods"]["ours: qcfs"]["accuracy"][8]
        qc8 = e["methods"]["ours: qcfs + membrane calibration"]["accuracy"][8]
        p64 = e["methods"]["ours: percentile"]["accuracy"][64]
        c = {
            "qcfs_T8_gap_points": 100 * (ann_q - q8),
            "qcfs_T8_within_0.5": 100 * (ann_q - q8) <= 0.5,
            "qcfs_calibrated_T8_gap_points": 100 * (ann_q - qc8),
            "qcfs_calibrated_T8_within_0.5": 100 * (ann_q - qc8) <= 0.5,
            "percentile_T64_gap_points": 100 * (ann_r - p64),
            "percentile_T64_within_1": 100 * (ann_r - p64) <= 1.0,
        }
        for ours, theirs in (("max (v0=0)", "Max"), ("max", "Max"),
                             ("percentile", "99.9%")):
            a = e["methods"][f"ours: {ours}"]["accuracy"]
            b = e["methods"][f"spikingjelly: {theirs}"]["accuracy"]
            worse = [t for t in TIMESTEPS if a[t] < b[t]]
            c[f"ours '{ours}' >= spikingjelly '{theirs}' at every T"] = not worse
            c[f"T where ours '{ours}' < spikingjelly '{theirs}'"] = worse
        out[arch] = c
        for k, v in c.items():
            print(f"{arch:<7} {k}: {v if not isinstance(v, float) else f'{v:.2f}'}")
    return out


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--width", type=int, default=16, help="channels of the first conv layers")
    p.add_argument("--levels", type=int, default=4, help="QCFS quantisation levels")
    p.add_argument("--calibration", type=int, default=256, help="calibration images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    results = run(args)
    import spikingjelly

    results["environment"] = {
        "torch": torch.__version__, "spikingjelly": getattr(spikingjelly, "__version__", "?"),
        "python": platform.python_version(), "machine": platform.machine(),
        "threads": args.threads, "epochs": args.epochs, "width": args.width, "levels": args.levels,
        "calibration_images": args.calibration, "seed": args.seed,
        "total_seconds": time.perf_counter() - start,
    }
    print(f"\ntotal {results['environment']['total_seconds']:.0f} s")
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()
