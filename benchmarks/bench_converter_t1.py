"""Hybrid conversion down to one time step on scikit-learn's 8x8 digits, and early exit.

Trains the digits CNN of ``bench_converter.py`` (VGG-style, ReLU), converts it with
``snn.converters.convert`` (percentile normalisation), then fine-tunes the converted SNN with
surrogate gradients while reducing the number of steps stage by stage (``finetune``: the
iterative step reduction of Chowdhury et al., arXiv:2110.05929), down to T = 1. Before
fine-tuning, the converted network's accuracy at every T from 1 to 64 and, from the same
simulation, the Top-K cutoff early exit (Wu et al., arXiv:2301.09522; thresholds fitted on
training images) are recorded.

Target checked: the SNN at T = 1 within 1 point of its ANN.

Run: ``python benchmarks/bench_converter_t1.py [--out PATH]`` (the committed record is
``benchmarks/results/converter_t1_digits.json``; nothing is written without ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_converter import accuracy, train, vgg

from snn._files import atomic_open
from snn.converters import convert
from snn.converters.early_exit import TopKCutoff
from snn.converters.finetune import finetune
from snn.demo.data import load_digits

MAX_T = 64


def simulate(net: nn.Module, x: torch.Tensor, steps: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([net.simulate(xb, steps) for xb in x.split(256)], 1)


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    d = load_digits(seed=args.seed)
    g = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(len(d.y_train), generator=g)
    ann = vgg(nn.ReLU, args.width)
    train_s = train(ann, d.x_train, d.y_train, args.epochs, args.seed)
    ann_acc = accuracy(ann, d.x_test, d.y_test)
    print(f"CNN: test accuracy {100 * ann_acc:.2f}% (trained in {train_s:.0f} s)", flush=True)
    net, _ = convert(ann, d.x_train[perm[:256]], time_chunk=16)
    out = simulate(net, d.x_test, MAX_T)
    fit = perm[: args.cutoff_samples]
    cutoff = TopKCutoff(args.epsilon).fit_outputs(simulate(net, d.x_train[fit], MAX_T),
                                                  d.y_train[fit])
    early = cutoff.evaluate_outputs(out, d.y_test)
    acc = early.fixed_accuracy
    print(f"converted: T1={100 * acc[1]:.1f} T8={100 * acc[8]:.1f} T64={100 * acc[64]:.1f}; "
          f"early exit {100 * early.accuracy:.2f}% at "
          f"{early.mean_steps:.2f} mean steps", flush=True)
    start = time.perf_counter()
    stages = finetune(net, (d.x_train, d.y_train), args.schedule, epochs=args.stage_epochs,
                      lr=args.lr, eval_data=(d.x_test, d.y_test), seed=args.seed)
    ft_s = time.perf_counter() - start
    for s in stages:
        print(f"  stage T={s.steps}: {100 * s.accuracy_before:.2f}% -> "
              f"{100 * s.accuracy_after:.2f}% ({s.epochs} epochs)", flush=True)
    t1 = stages[-1].accuracy_after
    return {
        "ann_accuracy": ann_acc, "train_seconds": train_s, "test_images": len(d.y_test),
        "converted": {"accuracy": early.fixed_accuracy,
                      "early_exit": {"epsilon": args.epsilon, "accuracy": early.accuracy,
                                     "mean_steps": early.mean_steps,
                                     "exit_histogram": early.exit_histogram}},
        "finetune": {"stages": [asdict(s) for s in stages], "seconds": ft_s,
                     "schedule": list(args.schedule), "lr": args.lr},
        "t1_accuracy": t1,
        "targets": {"T=1 within 1 point of the ANN": ann_acc - t1 <= 0.01 + 1e-12},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12, help="ANN training epochs")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--schedule", type=int, nargs="+", default=[4, 2, 1])
    p.add_argument("--stage-epochs", type=int, nargs="+", default=[2, 2, 10])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--epsilon", type=float, default=0.01, help="Top-K cutoff epsilon")
    p.add_argument("--cutoff-samples", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    start = time.perf_counter()
    results = run(args)
    results["environment"] = {
        "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "threads": args.threads,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "total_seconds": time.perf_counter() - start,
    }
    print(f"total {results['environment']['total_seconds']:.0f} s; targets {results['targets']}")
    if args.out:
        with atomic_open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
