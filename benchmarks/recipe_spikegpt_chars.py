"""Recipe: a tiny SpikeGPT (spiking RWKV) character model on Python's own standard library.

The text is the ``.py`` files at the top level of the running interpreter's standard library
(``sysconfig.get_paths()['stdlib']``), in sorted order: nothing is downloaded. Files are split
by their position in that order: every 10th file (index 0, 10, ...) is test text, the next one
(1, 11, ...) validation text, the rest training text. The vocabulary is fixed, independent of the
text: tab, newline, the 95 printable ASCII characters and one token for anything else (98).

Three models are trained in the same run on the same batches (same seed), for the same number
of steps, then scored in bits per character (bpc) on the held-out files, cut into windows of
``--window`` characters each predicted from its own prefix:

- the spiking RWKV model (:class:`snn.models.SpikeGPT`: LIF neurons over the token axis after
  every time-mix and channel-mix, binary spikes into the residual stream);
- the same model without neurons (plain RWKV, same parameter count);
- a one-layer GRU of about the same parameter count;

next to the unigram entropy of the test text under the training-text character frequencies
(add-one smoothing). A sampled continuation of a fixed prompt is stored in the record.

Run (1 thread; the record states the threads, the load average and the times)::

    nice -n 10 python benchmarks/recipe_spikegpt_chars.py --out results.json

The committed record ``benchmarks/results/recipe_spikegpt_chars.json`` is written only when
``--out`` points there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snn._files import atomic_open
from snn.cpu_kernels.warmup import use_kernels
from snn.models import SpikeGPT, generate
from snn.neurons import neurons_of, reset

RESULT = Path(__file__).resolve().parent / "results" / "recipe_spikegpt_chars.json"
VOCAB = "\t\n" + "".join(chr(c) for c in range(32, 127))
OOV = len(VOCAB)
VOCAB_SIZE = len(VOCAB) + 1
PROMPT = "def __init__(self"


def encode(text: str) -> Tensor:
    """Characters -> token indices of the fixed vocabulary (unknown characters -> ``OOV``)."""
    table = {c: i for i, c in enumerate(VOCAB)}
    return torch.tensor([table.get(c, OOV) for c in text], dtype=torch.long)


def decode(tokens: Tensor) -> str:
    return "".join(VOCAB[t] if t < OOV else "\ufffd" for t in tokens.tolist())


def stdlib_splits(root: str | None = None) -> dict[str, list[Path]]:
    """The standard library's top-level ``.py`` files, sorted, split into train/val/test."""
    folder = Path(root or sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in folder.glob("*.py") if p.is_file())
    if len(files) < 20:
        raise ValueError(f"expected the standard library's .py files in {folder}, found "
                         f"{len(files)}")
    split: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    for i, p in enumerate(files):
        split["test" if i % 10 == 0 else "val" if i % 10 == 1 else "train"].append(p)
    return split


def read_text(files: list[Path], limit: int | None = None) -> str:
    parts = []
    size = 0
    for p in files:
        t = p.read_text(encoding="utf-8", errors="replace")
        parts.append(t)
        size += len(t)
        if limit is not None and size >= limit:
            break
    text = "".join(parts)
    return text if limit is None else text[:limit]


class GRULM(nn.Module):
    """Embedding, one GRU layer, linear head: ``[T, B]`` tokens -> ``[T, B, vocab]``."""

    def __init__(self, vocab_size: int, hidden: int):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, hidden)
        self.rnn = nn.GRU(hidden, hidden)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.head(self.rnn(self.emb(tokens))[0])


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def gru_hidden_for(params: int, vocab: int) -> int:
    """The GRU width whose model has about ``params`` parameters."""
    best = 1
    for h in range(1, 2048):
        if count_params_gru(h, vocab) > params:
            break
        best = h
    return best


def count_params_gru(h: int, vocab: int) -> int:
    return vocab * h + 3 * (2 * h * h + 2 * h) + h * vocab + vocab


def batches(data: Tensor, steps: int, batch: int, ctx: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        start = torch.randint(0, len(data) - ctx - 1, (batch,), generator=g)
        idx = start[None, :] + torch.arange(ctx + 1)[:, None]  # [ctx + 1, B]
        yield data[idx]


def loss_of(model: nn.Module, chunk: Tensor) -> Tensor:
    if neurons_of(model):
        reset(model)
    logits = model(chunk[:-1])
    return F.cross_entropy(logits.flatten(0, 1), chunk[1:].flatten())


@torch.no_grad()
def bits_per_char(model: nn.Module, data: Tensor, window: int, batch: int = 64) -> float:
    """Mean bits per predicted character over non-overlapping windows of ``window + 1``."""
    model.eval()
    n = (len(data) - 1) // window
    idx = torch.arange(n)[None, :] * window + torch.arange(window + 1)[:, None]  # [w + 1, n]
    total, count = 0.0, 0
    for s in range(0, n, batch):
        chunk = data[idx[:, s:s + batch]]
        if neurons_of(model):
            reset(model)
        logits = model(chunk[:-1])
        total += F.cross_entropy(logits.flatten(0, 1), chunk[1:].flatten(),
                                 reduction="sum").item()
        count += chunk[1:].numel()
    model.train()
    return total / count / math.log(2)


@torch.no_grad()
def spike_rate(model: SpikeGPT, data: Tensor, window: int) -> float:
    """Fraction of neuron outputs that are spikes on the first held-out windows."""
    seen = []
    handles = [m.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().mean()))
               for _, m in neurons_of(model) if getattr(m, "spiking", False)]
    try:
        bits_per_char(model, data[: 16 * window + 1], window)
    finally:
        for h in handles:
            h.remove()
    return float(torch.stack(seen).mean()) if seen else 0.0


def unigram_bpc(train: Tensor, test: Tensor) -> float:
    counts = torch.bincount(train, minlength=VOCAB_SIZE).double() + 1
    logp = torch.log2(counts / counts.sum())
    return float(-logp[test].mean())


def train(model: nn.Module, data: Tensor, args, log: Callable[[str], None]) -> dict:
    torch.manual_seed(args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 50) * max(0.05, 1 - s / args.steps))
    t0, c0 = time.perf_counter(), time.process_time()
    losses = []
    for step, chunk in enumerate(batches(data, args.steps, args.batch, args.ctx, args.seed)):
        loss = loss_of(model, chunk)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if (step + 1) % max(1, args.steps // 10) == 0:
            recent = sum(losses[-50:]) / len(losses[-50:])
            log(f"  step {step + 1}/{args.steps}: train loss {recent:.3f} nats "
                f"({recent / math.log(2):.3f} bpc), {time.perf_counter() - t0:.0f} s")
    tail = losses[-50:]
    return {
        "steps": args.steps,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "process_seconds": round(time.process_time() - c0, 1),
        "final_train_bpc": round(sum(tail) / len(tail) / math.log(2), 4),
    }


def _set_threads(threads: int) -> None:
    """One thread count for torch and numba: the fused CPU loops run in numba, and numba's
    thread setting (restored after each call) also sets the OpenMP runtime torch uses."""
    torch.set_num_threads(threads)
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is optional
        return
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True,
                        help=f"JSON file of the results (the committed record: {RESULT})")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--ctx", type=int, default=64, help="training context (characters)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=int, default=128, help="evaluation window")
    parser.add_argument("--eval-chars", type=int, default=30000,
                        help="held-out characters scored per split")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default="spiking_rwkv,rwkv,gru")
    args = parser.parse_args(argv)
    _set_threads(args.threads)
    use_kernels()  # the same arithmetic whatever the state of the kernel cache
    wanted = [m for m in args.models.split(",") if m]
    known = ("spiking_rwkv", "rwkv", "gru")
    if not wanted or set(wanted) - set(known):
        parser.error(f"--models must list some of {known}, got {args.models!r}")

    def log(msg: str) -> None:
        print(msg, flush=True)

    split = stdlib_splits()
    train_text = read_text(split["train"])
    val_text = read_text(split["val"], args.eval_chars)
    test_text = read_text(split["test"], args.eval_chars)
    data = {"train": encode(train_text), "val": encode(val_text), "test": encode(test_text)}
    log(f"standard library text: {len(train_text)} train, {len(val_text)} val, "
        f"{len(test_text)} test characters")
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None

    spiking = SpikeGPT(VOCAB_SIZE, args.dim, args.layers)
    size = count_params(spiking)
    builders: dict[str, Callable[[], nn.Module]] = {
        "spiking_rwkv": lambda: SpikeGPT(VOCAB_SIZE, args.dim, args.layers),
        "rwkv": lambda: SpikeGPT(VOCAB_SIZE, args.dim, args.layers, spiking=False),
        "gru": lambda: GRULM(VOCAB_SIZE, gru_hidden_for(size, VOCAB_SIZE)),
    }
    results: dict[str, dict] = {}
    sample = None
    for name in wanted:
        torch.manual_seed(args.seed)
        model = builders[name]()
        log(f"{name}: {count_params(model)} parameters")
        entry = train(model, data["train"], args, log)
        entry["parameters"] = count_params(model)
        entry["val_bpc"] = round(bits_per_char(model, data["val"], args.window), 4)
        entry["test_bpc"] = round(bits_per_char(model, data["test"], args.window), 4)
        if name == "spiking_rwkv":
            entry["spike_rate"] = round(spike_rate(model, data["test"], args.window), 4)
            g = torch.Generator().manual_seed(args.seed)
            tokens = generate(model, encode(PROMPT)[:, None], 200, temperature=0.8, generator=g)
            sample = PROMPT + decode(tokens[:, 0])
            log(f"sample: {sample!r}")
        log(f"  {name}: val {entry['val_bpc']:.3f} bpc, test {entry['test_bpc']:.3f} bpc")
        results[name] = entry

    record = {
        "benchmark": "recipe_spikegpt_chars",
        "reference": "Zhu et al., SpikeGPT, arXiv:2302.13939, 2023",
        "data": {
            "source": "top-level .py files of the Python standard library, sorted; every 10th "
                      "file test, the next validation, the rest training",
            "python": platform.python_version(),
            "files": {k: len(v) for k, v in split.items()},
            "characters": {k: len(v) for k, v in data.items()},
            "sha256": {k: hashlib.sha256(t.encode()).hexdigest()[:16]
                       for k, t in (("train", train_text), ("val", val_text),
                                    ("test", test_text))},
            "vocab_size": VOCAB_SIZE,
            "oov_fraction_test": round(float((data["test"] == OOV).double().mean()), 5),
        },
        "settings": {k: getattr(args, k) for k in ("steps", "batch", "ctx", "dim", "layers",
                                                   "lr", "seed", "window", "eval_chars")},
        "unigram_test_bpc": round(unigram_bpc(data["train"], data["test"]), 4),
        "models": results,
        "sample": {"prompt": PROMPT, "temperature": 0.8, "text": sample},
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "command": "python benchmarks/recipe_spikegpt_chars.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
    }
    with atomic_open(args.out, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    log(f"unigram test {record['unigram_test_bpc']:.3f} bpc; record written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
