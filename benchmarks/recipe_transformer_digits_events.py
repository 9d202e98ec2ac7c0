"""Recipe: a small spiking transformer (Spikformer) on the offline event-digits task.

scikit-learn's 8x8 digits are shown to an emulated event camera moving in three saccades
(:mod:`snn.datasets.digits`, the ``digits-events`` task of :mod:`snn.training.tasks`), binned
into 4 frames of 2 x 17 x 17, and a one-block Spikformer (Zhou et al., ICLR 2023: the SPS
stem, spiking self-attention over 5 x 5 = 25 tokens, the spiking MLP; the zoo's
``spikformer_cifar10`` with the options below) is trained on them with cross-entropy on the
time-mean of its outputs. The target is at least 97% test accuracy on the 450 held-out digits.

Why the first version (``embed_dim=32``, the papers' neuron) learned slowly, and what changed:

- The papers' neuron is SpikingJelly's ``LIFNode(tau=2)``, whose input is scaled by
  ``1 - 1/tau = 0.5``: a batch-normalised drive (standard deviation 1) must stay above 1 for
  several steps, or exceed 2 at once, to fire. Static images repeated over T do that; event
  frames, which change every step, do not: 3-4% of the neurons fired at initialisation and the
  neuron after ``Q K^T V`` (threshold 0.5, inputs scaled by 0.125) almost never fired, so the
  attention branch was dead and ``W_Q`` got a sixteenth of the gradient
  (``tests/models/test_spikformer_event_frames.py``). Without the input scaling
  (``decay_input=False``) 13-18% fire everywhere, the attention neuron included, and the
  same model reached 68.0% validation accuracy after 4 epochs instead of 49.1%.
- ``embed_dim=32`` makes the SPS stem's first convolutions 4 and 8 channels wide on the
  17 x 17 frames (the CNN recipe uses 32): ``embed_dim=64`` doubles them. To pay for it,
  T = 4 time bins instead of 8 (half the cost per digit); batches of 16 instead of 32 give
  twice the updates per epoch. With both changes: 86.6% validation accuracy after 4 epochs.
- The run time was the other limit: on 2 cores shared with other jobs (load average 5-10,
  the job under ``nice -n 10``) an epoch took 1-4 minutes. The 10 epochs of the validation
  runs (cosine schedule) reach 97.3% test accuracy in 16 minutes (the record, seed 0); a
  shorter 6-epoch run, same settings otherwise, reached 96.0%.

The settings were chosen on a validation split (``--val``: the last 20% of a seeded
permutation of the training set, never the test set); the record's run trains on the whole
training set and reports the accuracy after the last epoch on the test set.

Run (the record gives the time it took, the threads and the load average it ran under)::

    python benchmarks/recipe_transformer_digits_events.py --threads 2 --out results.json

The committed record is ``benchmarks/results/recipe_transformer_digits_events.json`` (written
only with ``--out`` pointing there); the exit status is 1 when the accuracy of any seed misses
the target.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe_digits_events import write_record

from snn.models import create_model
from snn.training import TrainConfig, fit, seed_everything
from snn.training.checkpoint import atomic_write_bytes
from snn.training.tasks import build_task_data

TARGET = 0.97
RESULT = Path(__file__).resolve().parent / "results" / "recipe_transformer_digits_events.json"
MODEL = "spikformer_cifar10"
MODEL_KWARGS = {
    "in_channels": 2, "num_classes": 10, "embed_dim": 64, "num_heads": 4, "depth": 1,
    "pools": (False, True, True, False), "qkv_bias": True,
    "neuron_kwargs": {"decay_input": False},
}
SETTINGS = {"epochs": 10, "batch_size": 16, "lr": 3e-3, "loss": "ce"}
STEPS = 4
VAL_FRACTION = 0.2


def in_memory(data: Dataset) -> TensorDataset:
    """The frames of ``data`` computed once (12 MB for the training set) instead of binned
    from the events again in every epoch."""
    xs, ys = zip(*(data[i] for i in range(len(data))), strict=True)
    return TensorDataset(torch.stack(xs), torch.as_tensor(ys))


def validation_split(data: Dataset, seed: int) -> tuple[Subset, Subset]:
    """``(train, validation)``: the last ``VAL_FRACTION`` of a seeded permutation is held out."""
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).tolist()
    cut = len(data) - round(VAL_FRACTION * len(data))
    return Subset(data, perm[:cut]), Subset(data, perm[cut:])


def run_seed(seed: int, args: argparse.Namespace, root: str) -> tuple:
    t0 = time.perf_counter()
    seed_everything(seed)
    train_set, test_set = build_task_data("digits-events", root, args.steps, seed)
    train_set, test_set = in_memory(train_set), in_memory(test_set)
    if args.val:
        train_set, test_set = validation_split(train_set, seed)
    t_data = time.perf_counter() - t0

    model = create_model(MODEL, **MODEL_KWARGS)
    with tempfile.TemporaryDirectory() as run_dir:
        config = TrainConfig(**{
            **SETTINGS, "dataset": "digits-events", "epochs": args.epochs, "seed": seed,
            "device": args.device, "out_dir": run_dir, "tensorboard": False,
            "progress": False,
        })
        t1 = time.perf_counter()
        result = fit(model, train_set, test_set, config)
        t_train = time.perf_counter() - t1
    return result, train_set, test_set, model, config, t_data, t_train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="cache folder of the generated events")
    parser.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    parser.add_argument("--steps", type=int, default=STEPS, help="time bins T per digit")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--val", action="store_true",
                        help="model selection: train on 80%% of the training set and report the "
                             "accuracy on the held-out 20%% instead of the test set")
    parser.add_argument("--out", required=True,
                        help=f"JSON file of the results (the committed record: {RESULT})")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    root = args.root or os.path.join(tempfile.gettempdir(), "snn-digits-events")
    load_at_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    runs, first = [], None
    for seed in args.seeds:
        outcome = run_seed(seed, args, root)
        first = first or outcome
        result, t_train = outcome[0], outcome[-1]
        runs.append({"seed": seed, "test_accuracy": result.final_accuracy,
                     "seconds_train": round(t_train, 1), "history": result.history})
        print(f"seed {seed}: {'validation' if args.val else 'test'} accuracy "
              f"{result.final_accuracy:.4f} after {len(result.history)} epochs, "
              f"{t_train:.0f} s", flush=True)

    # The first seed's run fills the common record; every seed's accuracy is added to it.
    result, train_set, test_set, model, config, t_data, t_train = first
    record = write_record(
        args.out, "transformer-digits-events", TARGET, result, train_set, test_set, model,
        MODEL, MODEL_KWARGS, args.steps, config, t_data, t_train, args.device,
    )
    accs = [r["test_accuracy"] for r in runs]
    record.update({
        "evaluated_on": "validation split of the training set" if args.val else "test set",
        "seed": args.seeds[0],
        "seeds": runs,
        "test_accuracy_per_seed": accs,
        "test_accuracy_min": min(accs),
        "passed": min(accs) >= TARGET,
        "load_average_at_start": load_at_start,
        "seconds_train_total": round(sum(r["seconds_train"] for r in runs), 1),
    })
    text = json.dumps(record, indent=1)
    atomic_write_bytes(args.out, lambda f: f.write(text.encode()))
    return 0 if record["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
