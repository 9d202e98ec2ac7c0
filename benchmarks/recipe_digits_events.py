"""Recipe: the full event pipeline on data generated here, trained on the CPU.

scikit-learn's 8x8 digits are shown to an emulated event camera moving in three saccades (the
way N-MNIST was recorded; :mod:`snn.datasets.digits`), the events are binned into frames
(:mod:`snn.datasets.transforms`), and a reduced-width PLIF network of Fang et al. (2021) is
trained on them (:mod:`snn.training`). The target is at least 95% test accuracy on the 450
held-out digits.

Run (a few minutes on a laptop CPU)::

    python benchmarks/recipe_digits_events.py --root ~/.cache/snn/digits-events

The measured numbers are written to ``benchmarks/results/recipe_digits_events.json``; the exit
status is 1 when the accuracy misses the target.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from snn.cpu_kernels.warmup import use_kernels
from snn.models import create_model
from snn.training import TrainConfig, fit, seed_everything
from snn.training.checkpoint import atomic_write_bytes
from snn.training.tasks import TASKS, build_task_data

TARGET = 0.95
RESULT = Path(__file__).resolve().parent / "results" / "recipe_digits_events.json"


def write_record(out: str, recipe: str, target: float, result, train_set, test_set, model,
                 model_name: str, model_kwargs: dict, steps: int, config, t_data: float,
                 t_train: float, device: str) -> dict:
    """Write a recipe's JSON record (accuracy against its target, the run's settings, threads,
    load and versions) atomically to ``out``, print a summary line, and return the record."""
    record = {
        "recipe": recipe,
        "target_accuracy": target,
        "test_accuracy": result.final_accuracy,
        "best_test_accuracy": result.best_accuracy,
        "passed": result.final_accuracy >= target,
        "train_samples": len(train_set),
        "test_samples": len(test_set),
        "model": model_name,
        "model_kwargs": model_kwargs,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "config": {k: v for k, v in config.to_dict().items() if k not in ("out_dir", "root")},
        "history": result.history,
        "seconds_data": round(t_data, 1),
        "seconds_train": round(t_train, 1),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    text = json.dumps(record, indent=1)
    atomic_write_bytes(out, lambda f: f.write(text.encode()))
    print(
        f"{recipe}: test accuracy {result.final_accuracy:.4f} (target {target}), "
        f"data {t_data:.0f} s, training {t_train:.0f} s for {len(result.history)} epochs; "
        f"written to {out}"
    )
    return record


def main(argv: list[str] | None = None) -> int:
    task = TASKS["digits-events"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="cache folder of the generated events")
    parser.add_argument("--epochs", type=int, default=task.settings["epochs"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", default=str(RESULT), help="JSON file of the results")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    use_kernels()  # the same arithmetic whatever the state of the kernel cache

    root = args.root or os.path.join(tempfile.gettempdir(), "snn-digits-events")
    t0 = time.perf_counter()
    seed_everything(args.seed)
    train_set, test_set = build_task_data("digits-events", root, task.steps, args.seed)
    t_data = time.perf_counter() - t0

    model = create_model(task.model, **task.model_kwargs)
    with tempfile.TemporaryDirectory() as run_dir:
        config = TrainConfig(
            **{
                **task.settings,
                "dataset": "digits-events",
                "epochs": args.epochs,
                "seed": args.seed,
                "device": args.device,
                "out_dir": run_dir,
                "tensorboard": False,
            }
        )
        t1 = time.perf_counter()
        result = fit(model, train_set, test_set, config)
        t_train = time.perf_counter() - t1

    record = write_record(
        args.out, "digits-events", TARGET, result, train_set, test_set, model, task.model,
        task.model_kwargs, task.steps, config, t_data, t_train, args.device,
    )
    return 0 if record["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
