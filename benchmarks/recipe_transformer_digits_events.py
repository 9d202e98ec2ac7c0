"""Recipe: a small spiking transformer (Spikformer) on the offline event-digits task.

scikit-learn's 8x8 digits are shown to an emulated event camera moving in three saccades
(:mod:`snn.datasets.digits`, the ``digits-events`` task of :mod:`snn.training.tasks`), binned
into 8 frames of 2 x 17 x 17, and a one-block Spikformer (Zhou et al., ICLR 2023; the SPS
stem, spiking self-attention over 5 x 5 = 25 tokens of 32 features, the spiking MLP) is
trained on them with cross-entropy on the time-mean of its outputs. The target is at least
97% test accuracy on the 450 held-out digits.

Run (the record gives the time it took and the load average it ran under)::

    python benchmarks/recipe_transformer_digits_events.py --out results.json

The committed record is ``benchmarks/results/recipe_transformer_digits_events.json`` (written
only with ``--out`` pointing there); the exit status is 1 when the accuracy misses the target.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe_digits_events import write_record

from snn.models import create_model
from snn.training import TrainConfig, fit, seed_everything
from snn.training.tasks import TASKS, build_task_data

TARGET = 0.97
RESULT = Path(__file__).resolve().parent / "results" / "recipe_transformer_digits_events.json"
MODEL = "spikformer_cifar10"
MODEL_KWARGS = {
    "in_channels": 2, "num_classes": 10, "embed_dim": 32, "num_heads": 2, "depth": 1,
    "pools": (False, True, True, False), "qkv_bias": True,
}
SETTINGS = {"epochs": 8, "batch_size": 32, "lr": 3e-3, "loss": "ce"}


def main(argv: list[str] | None = None) -> int:
    task = TASKS["digits-events"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="cache folder of the generated events")
    parser.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", required=True,
                        help=f"JSON file of the results (the committed record: {RESULT})")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    root = args.root or os.path.join(tempfile.gettempdir(), "snn-digits-events")
    t0 = time.perf_counter()
    seed_everything(args.seed)
    train_set, test_set = build_task_data("digits-events", root, task.steps, args.seed)
    t_data = time.perf_counter() - t0

    model = create_model(MODEL, **MODEL_KWARGS)
    with tempfile.TemporaryDirectory() as run_dir:
        config = TrainConfig(
            **{
                **SETTINGS,
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
        args.out, "transformer-digits-events", TARGET, result, train_set, test_set, model,
        MODEL, MODEL_KWARGS, task.steps, config, t_data, t_train, args.device,
    )
    return 0 if record["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
