"""Hybrid conversion down to one time step on scikit-learn's 8x8 digits, and early exit.

Trains the digits CNN of ``bench_converter.py`` (VGG-style, ReLU), converts it with
``snn.converters.convert`` (percentile normalisation), then fine-tunes the converted SNN with
surrogate gradients while reducing the number of steps stage by stage (``finetune``: the
iterative initialisation and retraining of Chowdhury et al., arXiv:2110.05929), down to T = 1.
Before fine-tuning, the converted network's accuracy at every T from 1 to 64 and, from the same
simulation, the Top-K cutoff early exit (Wu et al., arXiv:2301.09522; thresholds fitted on
training images) are recorded; after it, the accuracy of each stage's network at its own T
and that of the final network at every T from 1 to the largest T of the schedule.

Data and selection: each seed draws its own stratified train/test split of the digits (1347
and 450 images) and holds a validation split (201 images) out of the training images. Tuning
(``--no-test``): the ANN and the SNN train on the other 1146 images and are measured on the
validation split, each fine-tuning stage ending with its last epoch (``--keep last``: with a
cosine schedule the last epoch has converged, and its validation accuracy is not the best of
hundreds of looks at the same images). The record (the default without ``--no-test``): the
ANN and the SNN train on all 1347 training images with the chosen budget (``--refit``, the
usual retraining once the hyperparameters are fixed; the ANN gets the same images as the
SNN), each stage ending with its last epoch, and the test split is evaluated once.

Up to the record of commit e32a971, each stage instead kept its epoch of best validation accuracy
(``--keep best``), and the ANN and SNN trained without the validation images. That choice was
optimistic: 99.0% at T = 1 on validation (the best of 300 epochs on 201 images) against
96.15% on test, 1.63 points below the ANN's 97.78%. With the last epoch kept, the same
configuration scores 97.5% on validation (ANN 98.3%), and the validation accuracy swings by 5
points from epoch to epoch in the middle of the T = 1 stage. That record's test result was
seen before this change of selection was made.

The defaults (schedule 4, 2, 1; epochs 4, 8, 300; learning rates 3e-3, 3e-3, 1e-2 along a
cosine; distillation weight 0.5 at temperature 4; the shift augmentation of the ANN) were
chosen on validation: with best-epoch selection, seed 0: epochs 4, 4, 6, 30 at learning rate
1e-3 gave 91.5% at T = 1, epochs 2, 2, 2, 30 at 3e-3 gave 94.0%, the same with distillation
94.5%. Seeds 0, 1, 2 (mean, ANN 98.3%): schedule 4, 3, 2, 1 with epochs 2, 2, 2, 50 gave
96.5%, schedule 4, 2, 1 with epochs 2, 4, 70 gave 97.4% and with epochs 4, 8, 100 98.2%, the
latter with the triangle surrogate 97.7%; with epochs 4, 8, 300 98.5%; with learning rates
3e-3, 3e-3, 1e-2 per stage 99.0%. The later tries, among them those with the last epoch kept
(a running weight average, mixup with distillation alone, a sharper and a wider surrogate,
dropout), are in ``VALIDATION_TRIES`` (written to the record); none beat the defaults with the
last epoch kept (97.5% against the ANN's 98.3% on validation), so the defaults stayed.

Knowledge distillation from the ANN (Hinton et al., arXiv:1503.02531) is on by default
(``--distill-weight 0`` turns it off).

Target checked: the SNN at T = 1 within 1 point of its ANN (the mean over the seeds). Seeds
0, 1, 2, run once on test with these defaults: ANN 97.48 +- 0.78%, T = 1 96.67 +- 0.44%, 0.81
points apart (per seed +0.44, -2.00, -0.89). Against the record before it (ANN 97.78%, T = 1
96.15%), the T = 1 mean rose by 0.52 points and the ANN's, retrained on the 201 more images,
fell by 0.30; with 450 test images one image is 0.22 points. As a check that this margin was
not luck of three seeds, seeds 3 and 4 were added with nothing else changed (seeds 0-2
reproduce to the last digit): the committed record, seeds 0-4, gives ANN 97.91 +- 0.81%,
T = 1 97.02 +- 0.60%, 0.89 points apart (seeds 3 and 4: -1.11, -0.89).

Run: ``python benchmarks/bench_converter_t1.py [--seeds 0 1 2] [--out PATH]`` for the record
(the committed one is ``benchmarks/results/converter_t1_digits.json``, made with
``OMP_NUM_THREADS=1 python benchmarks/bench_converter_t1.py --seeds 0 1 2 3 4 --out ...``; nothing
is written without ``--out``), ``--no-test`` to tune on the validation split.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_converter import accuracy, train, vgg

from snn._files import atomic_open
from snn.converters import convert
from snn.converters.early_exit import TopKCutoff
from snn.converters.finetune import KEEP, finetune
from snn.cpu_kernels.warmup import use_kernels
from snn.datasets.digits import stratified_split
from snn.demo.data import load_digits
from snn.surrogate import get_surrogate

MAX_T = 64

SELECTION = {
    "best": "each stage keeps its epoch of best validation accuracy",
    "last": "each stage keeps its last epoch; validation accuracy only recorded",
    "refit": "ANN and SNN trained on all training images (validation split included) with "
             "the budget chosen on validation; each stage keeps its last epoch",
}

VALIDATION_TRIES = {
    "note": "T=1 accuracy on the validation split (201 images per seed; the ANN gets 98.3% "
            "there), never the test split; 'train' is the T=1 accuracy on the training images, "
            "without augmentation. Each try changes the defaults in one place unless stated. "
            "Up to the entry 'keep last', each stage kept its epoch of best validation "
            "accuracy, and the number is that best accuracy (the best of up to 300 looks at "
            "the same images, so optimistic); from 'keep last' on, each stage keeps its last "
            "epoch and the number is the last epoch's. One image is 0.5 points of one seed's "
            "validation accuracy; the sampling error of a 3-seed mean near 97% is about 0.7 "
            "points.",
    "former defaults (schedule 4 2 1, epochs 4 8 100, distillation 0.5)":
        "seeds 0-2: 98.2 +- 1.2 (train 98.6)",
    "distillation off (--distill-weight 0)": "seeds 0-2: 97.7 +- 0.8 (train 98.7)",
    "distillation weight 0.9": "seed 0: 96.0 (defaults 97.5; train 98.2 against 98.9)",
    "batch normalisation during each stage (--batch-norm)":
        "seed 0: 96.5 (train 97.7)",
    "trainable leak (--train-leak) with epochs 8 16 100": "seed 0: 96.0 (train 98.5)",
    "epochs 4 8 300 (the new default)": "seeds 0-2: 98.5 +- 1.3 (train 99.0); per seed 97.0, "
                                        "99.5, 99.0",
    "gradual schedule 5 4 3 2 1 with epochs 4 4 4 8 300 (as in the paper)":
        "seeds 0-2: 98.5 +- 0.5; per seed 98.0, 99.0, 98.5",
    "running weight average in every stage (--ema-decay 0.998)":
        "seeds 0-2: 98.8 +- 0.8; per seed 98.0, 99.5, 99.0 (2 more images right on seed 0, "
        "not taken as a clear gain; the short T=4 and T=2 stages end far worse, validation "
        "86.6 and 80.6 on seed 0, as the average barely leaves their initial weights)",
    "learning rate 1e-2 for the T=1 stage (--lr 3e-3 3e-3 1e-2)":
        "seeds 0-2: 99.0 +- 0.0; per seed 99.0, 99.0, 99.0 (3 images more right in all; "
        "the best validation accuracy of the tries, so the default since)",
    "keep last (--keep last, defaults otherwise)":
        "seeds 0-2: 97.51 +- 1.79 (ANN 98.34); per seed 95.5, 99.0, 98.0; train 99.7, 100.0, "
        "99.5; the best epochs of the same runs reached 99.0, 99.5, 99.5: the best-epoch "
        "choice overstated validation by 1.8 points",
    "keep last, running weight average in every stage (--ema-decay 0.998)":
        "seeds 0-2: 96.85 +- 0.29; per seed 96.5, 97.0, 97.0 (the T=4 and T=2 stages end far "
        "worse, as before)",
    "keep last, mixup of the shifted images and distillation alone (--mixup "
    "--distill-weight 1; function matching, Beyer et al., CVPR 2022)":
        "seeds 0-2: 97.18 +- 0.76; per seed 96.5, 97.0, 98.0; train 97.7, 98.1, 98.0 (less "
        "fitted in 300 epochs)",
    "keep last, running weight average in the T=1 stage only (--ema-decay none none 0.998)":
        "seeds 0-2: 97.01 +- 1.79; per seed 95.0, 97.5, 98.5",
    "keep last, sharper surrogate (--surrogate atan --surrogate-alpha 4; default alpha 2)":
        "seeds 0-2: 96.19 +- 1.60; per seed 98.0, 95.5, 95.0 (seed 0 from 95.5 to 98.0, "
        "seeds 1 and 2 down by 3.5 and 3.0: the spread between tries is mostly the "
        "validation sample's)",
    "keep last, dropout 0.2 on the Linear layers' inputs while fine-tuning (--dropout 0.2, "
    "the ANN's own dropout)":
        "seeds 0-2: 97.51 +- 1.00; per seed 96.5, 98.5, 97.5; train 99.1, 99.6, 99.6 (the "
        "same mean as the defaults, so not taken)",
    "keep last, wider surrogate (--surrogate atan --surrogate-alpha 1)":
        "seeds 0-2: 96.52 +- 0.86; per seed 96.0, 97.5, 96.0; train 99.4, 99.0, 99.5",
}


def simulate(net: nn.Module, x: torch.Tensor, steps: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([net.simulate(xb, steps) for xb in x.split(256)], 1)


def curve(out: torch.Tensor, y: torch.Tensor) -> dict[int, float]:
    """Accuracy at every T from one simulation ``[T, N, classes]``."""
    return {t + 1: float((out[t].argmax(-1) == y).float().mean()) for t in range(out.shape[0])}


def shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The ANN's training augmentation: the batch shifted by up to one pixel."""
    dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=g))
    return torch.roll(F.pad(x, (1, 1, 1, 1)), (dy, dx), (2, 3))[:, :, 1:-1, 1:-1]


def shift_mix(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """``shift``, then each image mixed with another of the batch, ``l x_i + (1 - l) x_j`` with
    ``l`` uniform in [0, 1] (mixup, Zhang et al., ICLR 2018, with Beta(1, 1)), for distilling
    on images between the training images ("function matching": Beyer et al., "Knowledge
    distillation: A good teacher is patient and consistent", CVPR 2022; the teacher sees the
    same mixed image, and the loss is the distillation term alone)."""
    x = shift(x, g)
    lam = torch.rand(x.shape[0], *([1] * (x.dim() - 1)), generator=g)
    return lam * x + (1 - lam) * x[torch.randperm(x.shape[0], generator=g)]


def run_seed(args: argparse.Namespace, seed: int) -> dict:
    torch.manual_seed(seed)
    d = load_digits(seed=seed)
    val = torch.from_numpy(stratified_split(d.y_train.numpy(), args.val_fraction,
                                            np.random.default_rng([seed, 7])))
    x_tr, y_tr = d.x_train[~val], d.y_train[~val]
    x_val, y_val = d.x_train[val], d.y_train[val]
    if args.refit:  # the budget was chosen on validation: now train on every training image
        x_tr, y_tr = d.x_train, d.y_train
    report_x, report_y = (x_val, y_val) if args.no_test else (d.x_test, d.y_test)
    split = "validation" if args.no_test else "test"
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y_tr), generator=g)
    ann = vgg(nn.ReLU, args.width)
    start = time.process_time()
    train(ann, x_tr, y_tr, args.epochs, seed)
    ann_acc = accuracy(ann, report_x, report_y)
    print(f"seed {seed}: CNN {split} accuracy {100 * ann_acc:.2f}%", flush=True)
    net, _ = convert(ann, x_tr[perm[:256]], time_chunk=16)
    out = simulate(net, report_x, MAX_T)
    fit = perm[: args.cutoff_samples]
    cutoff = TopKCutoff(args.epsilon).fit_outputs(simulate(net, x_tr[fit], MAX_T), y_tr[fit])
    early = cutoff.evaluate_outputs(out, report_y)
    acc = early.fixed_accuracy
    print(f"  converted: T1={100 * acc[1]:.1f} T4={100 * acc[4]:.1f} T64={100 * acc[64]:.1f}; "
          f"early exit {100 * early.accuracy:.2f}% at {early.mean_steps:.2f} mean steps",
          flush=True)
    surrogate = (None if args.surrogate is None and args.surrogate_alpha is None
                 else get_surrogate(args.surrogate, **({} if args.surrogate_alpha is None
                                                       else {"alpha": args.surrogate_alpha})))
    ft_start = time.process_time()
    stages = finetune(
        net, (x_tr, y_tr), args.schedule, epochs=args.stage_epochs,
        lr=args.lr[0] if len(args.lr) == 1 else args.lr,
        lr_schedule=args.lr_schedule, val_data=None if args.refit else (x_val, y_val),
        eval_data=(report_x, report_y), keep=args.keep,
        augment=(shift_mix if args.mixup else shift) if args.augment else None, seed=seed,
        teacher=ann if args.distill_weight > 0 else None, distill_weight=args.distill_weight,
        temperature=args.temperature, surrogate=surrogate, train_leak=args.train_leak,
        batch_norm=args.batch_norm, dropout=args.dropout,
        ema_decay=args.ema_decay[0] if args.ema_decay and len(args.ema_decay) == 1
        else args.ema_decay)
    ft_cpu = time.process_time() - ft_start
    for s in stages:
        kept = ("" if s.val_accuracy is None else
                f" (validation {100 * s.val_accuracy:.2f}% at epoch {s.best_epoch}/{s.epochs}; "
                f"best {100 * max(s.val_history):.2f}%)")
        print(f"  stage T={s.steps}: {100 * s.accuracy_before:.2f}% -> "
              f"{100 * s.accuracy_after:.2f}%{kept}", flush=True)
    after = curve(simulate(net, report_x, max(args.schedule)), report_y)
    t1 = after[1]
    with torch.no_grad():
        train_t1 = float((net(x_tr, 1).argmax(-1) == y_tr).float().mean())
    print(f"  fine-tuned: T=1 {100 * t1:.2f}% (ANN {100 * ann_acc:.2f}%); "
          f"{ft_cpu:.0f} s CPU", flush=True)
    return {
        "seed": seed, "ann_accuracy": ann_acc,
        "images": {"train": len(y_tr), "validation": 0 if args.refit else len(y_val),
                   split: len(report_y)},
        "converted": {"accuracy": acc,
                      "early_exit": {"epsilon": args.epsilon, "accuracy": early.accuracy,
                                     "mean_steps": early.mean_steps,
                                     "exit_histogram": early.exit_histogram}},
        "stages": [asdict(s) for s in stages],
        "finetuned_accuracy": after,
        "t1_accuracy": t1,
        "t1_train_accuracy": train_t1,
        "finetune_cpu_seconds": ft_cpu,
        "cpu_seconds": time.process_time() - start,
    }


def _mean_sd(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarise(args: argparse.Namespace, runs: list[dict]) -> dict:
    """The record of the seeds run so far."""
    ann = _mean_sd([r["ann_accuracy"] for r in runs])
    t1 = _mean_sd([r["t1_accuracy"] for r in runs])
    max_t = max(args.schedule)
    split = "validation" if args.no_test else "test"
    return {
        "benchmark": "converter-t1-digits",
        "evaluated_on": split,
        "seeds": [r["seed"] for r in runs],
        "images": runs[0]["images"],
        "ann_accuracy": ann["mean"], "ann_accuracy_sd": ann["sd"],
        "t1_accuracy": t1["mean"], "t1_accuracy_sd": t1["sd"],
        "converted_accuracy": {t: _mean_sd([r["converted"]["accuracy"][t] for r in runs])
                               for t in range(1, max_t + 1)},
        "finetuned_accuracy": {t: _mean_sd([r["finetuned_accuracy"][t] for r in runs])
                               for t in range(1, max_t + 1)},
        "finetune": {"schedule": list(args.schedule), "epochs": list(args.stage_epochs),
                     "lr": args.lr, "lr_schedule": args.lr_schedule,
                     "augment": args.augment, "mixup": args.mixup,
                     "distill_weight": args.distill_weight,
                     "temperature": args.temperature, "surrogate": args.surrogate,
                     "train_leak": args.train_leak, "batch_norm": args.batch_norm,
                     "dropout": args.dropout,
                     "ema_decay": args.ema_decay, "surrogate_alpha": args.surrogate_alpha,
                     "refit": args.refit, "keep": "last" if args.refit else args.keep,
                     "selection": SELECTION["refit" if args.refit else args.keep]},
        "validation_tries": VALIDATION_TRIES,
        "targets": {"T=1 within 1 point of the ANN (mean over seeds)":
                    ann["mean"] - t1["mean"] <= 0.01 + 1e-12},
        "runs": runs,
    }


def environment(args: argparse.Namespace, load_before: tuple, start: float) -> dict:
    return {
        "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "threads": args.threads,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "total_seconds": time.perf_counter() - start,
    }


def _decay(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12, help="ANN training epochs")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--schedule", type=int, nargs="+", default=[4, 2, 1])
    p.add_argument("--stage-epochs", type=int, nargs="+", default=[4, 8, 300])
    p.add_argument("--lr", type=float, nargs="+", default=[3e-3, 3e-3, 1e-2],
                   help="peak learning rate, one or one per stage")
    p.add_argument("--lr-schedule", default="cosine")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="shift training images by up to one pixel, as for the ANN")
    p.add_argument("--distill-weight", type=float, default=0.5,
                   help="weight of knowledge distillation from the ANN (0: off)")
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--mixup", action=argparse.BooleanOptionalAction, default=False,
                   help="mix the shifted training images in pairs and distil on them alone "
                        "(function matching; needs --distill-weight 1)")
    p.add_argument("--surrogate", default=None, help="surrogate during fine-tuning")
    p.add_argument("--surrogate-alpha", type=float, default=None,
                   help="the surrogate's alpha (default: the surrogate's own)")
    p.add_argument("--train-leak", action=argparse.BooleanOptionalAction, default=False,
                   help="train a layer-wise leak with the weights and thresholds")
    p.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=False,
                   help="batch normalisation during each stage, folded after it")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="dropout on the input of the Linear layers while fine-tuning (0: none)")
    p.add_argument("--ema-decay", type=_decay, nargs="+", default=None,
                   help="keep a running average of the weights with this decay, one or one "
                        "per stage ('none': no average in that stage; default: none)")
    p.add_argument("--val-fraction", type=float, default=0.15,
                   help="fraction of the training images held out for validation")
    p.add_argument("--no-test", action="store_true",
                   help="report on the validation split instead of the test split (tuning)")
    p.add_argument("--keep", choices=KEEP, default="last",
                   help="each stage ends with its last epoch (validation only recorded) or "
                        "its epoch of best validation accuracy")
    p.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                   help="train the ANN and the SNN on all the training images (validation "
                        "split included), each stage ending with its last epoch (default: on "
                        "unless --no-test)")
    p.add_argument("--epsilon", type=float, default=0.01, help="Top-K cutoff epsilon")
    p.add_argument("--cutoff-samples", type=int, default=512)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args()
    if args.mixup and (args.distill_weight != 1 or not args.augment):
        p.error("--mixup distils on mixed images, whose labels are the teacher's: it needs "
                "--distill-weight 1 and --augment")
    if args.refit and args.no_test:
        p.error("--refit trains on the validation split, so it cannot report on it "
                "(--no-test)")
    if args.refit is None:
        args.refit = not args.no_test
    torch.set_num_threads(args.threads)
    use_kernels()  # the same arithmetic whatever the state of the kernel cache
    load_before = os.getloadavg()
    start = time.perf_counter()
    runs: list[dict] = []
    for seed in args.seeds:
        runs.append(run_seed(args, seed))
        results = summarise(args, runs)
        results["environment"] = environment(args, load_before, start)
        if args.out:  # the record of the seeds done so far, replaced after each seed
            with atomic_open(args.out, "w") as f:
                json.dump(results, f, indent=1)
    print(f"ANN {100 * results['ann_accuracy']:.2f} +- {100 * results['ann_accuracy_sd']:.2f}%;"
          f" T=1 {100 * results['t1_accuracy']:.2f} +- {100 * results['t1_accuracy_sd']:.2f}%; "
          f"total {results['environment']['total_seconds']:.0f} s; "
          f"targets {results['targets']}")


if __name__ == "__main__":
    main()
