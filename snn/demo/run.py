"""The main job: ANN -> SNN conversion and direct SNN training on the 8x8 digits, accuracy
against time steps, energy on hardware targets, and a report folder."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

import snn
from snn._files import atomic_write_bytes
from snn.demo.data import load_digits
from snn.demo.models import cnn, spiking_cnn
from snn.demo.train import accuracy, snn_accuracy_vs_steps, snn_logits, train

__all__ = ["DemoConfig", "run_demo"]

REPORT_FILES = (
    "report.json",
    "summary.md",
    "accuracy_vs_steps.png",
    "energy.png",
    "spike_raster.png",
    "firing_rates.png",
)
"""Files every report folder holds."""


@dataclass
class DemoConfig:
    """What the demo does; :meth:`quick` is the sub-minute variant.

    Attributes:
        width: channels of the first convolution (the second has twice as many).
        ann_epochs: epochs of CNN training.
        snn_epochs: epochs of direct SNN training.
        snn_train_steps: time steps T the SNN is trained with.
        snn_batch_size: batch size of SNN training.
        steps: the T values both SNNs are evaluated at.
        convert_steps: T of the converted SNN in the energy estimate.
        energy_samples: test samples the operations are counted on.
        targets: hardware targets of the SNN energy estimates (:data:`snn.energy.TARGETS`).
        ann_target: the target the CNN is priced on.
        seed: seed of the split, initialisation and batches.
    """

    width: int = 16
    ann_epochs: int = 30
    snn_epochs: int = 15
    snn_train_steps: int = 8
    snn_batch_size: int = 64
    steps: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    convert_steps: int = 32
    energy_samples: int = 256
    targets: tuple[str, ...] = ("cmos45_fp32", "cmos45_int8", "loihi", "truenorth")
    ann_target: str = "cmos45_fp32"
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def quick(cls, seed: int = 0) -> DemoConfig:
        """A run of well under a minute on two CPU cores (lower accuracy)."""
        return cls(
            width=8,
            ann_epochs=6,
            snn_epochs=4,
            snn_train_steps=4,
            snn_batch_size=128,
            steps=(1, 2, 4, 8, 16),
            convert_steps=16,
            energy_samples=128,
            seed=seed,
        )


def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)


def _save_figure(fig: Any, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _write_atomic(path, buf.getvalue())


def _log(message: str, enabled: bool) -> None:
    if enabled:
        print(message, flush=True)


def run_demo(
    out_dir: str | os.PathLike[str],
    config: DemoConfig | None = None,
    *,
    device: str = "cpu",
    progress: bool = True,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the whole demo and write its report folder.

    Steps: load the digits; train the CNN; convert it (:func:`snn.converters.convert`) and read
    its accuracy at every T (:func:`snn.converters.evaluate`); train the spiking CNN directly
    with surrogate gradients and read its accuracy at every T; count the operations of the
    CNN and of both SNNs on test samples and price them on each target
    (:mod:`snn.energy`); write ``report.json``, figures and ``summary.md`` into ``out_dir``.

    Args:
        out_dir: the report folder (created; existing report files are replaced).
        config: what to run (default :class:`DemoConfig`, a few minutes on two CPU cores).
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:1"``...).
        progress: progress bars on the terminal.
        verbose: one line per finished step on the terminal.

    Returns:
        the report (also in ``report.json``).

    Raises:
        ValueError: for an unavailable device or an unknown target.
    """
    from snn import viz
    from snn.converters import convert, evaluate
    from snn.demo.energy import energy_table
    from snn.energy import get_target
    from snn.layers import Monitor

    config = config or DemoConfig()
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "--device cuda was asked for but torch sees no CUDA GPU; run with --device cpu"
        )
    for target in (*config.targets, config.ann_target):
        get_target(target)  # fails early, with the list of targets
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    torch.manual_seed(config.seed)

    data = load_digits(seed=config.seed).to(dev)
    _log(f"digits: {len(data.x_train)} train / {len(data.x_test)} test images, 8x8", verbose)

    # 1. the CNN
    t0 = time.perf_counter()
    ann = cnn(config.width).to(dev)
    ann_losses = train(
        ann,
        lambda m, x: m(x),
        data.x_train,
        data.y_train,
        epochs=config.ann_epochs,
        seed=config.seed,
        desc="CNN",
        progress=progress,
    )
    with torch.no_grad():
        ann_acc = accuracy(ann(data.x_test), data.y_test)
    timings["train_ann_s"] = time.perf_counter() - t0
    _log(f"CNN test accuracy {100 * ann_acc:.2f}%", verbose)

    # 2. conversion
    t0 = time.perf_counter()
    converted, conv_report = convert(ann, data.x_train, steps=config.convert_steps)
    result = evaluate(ann, converted, (data.x_test, data.y_test), timesteps=config.steps)
    timings["convert_evaluate_s"] = time.perf_counter() - t0
    converted_acc = {int(t): float(a) for t, a in result.snn_accuracy.items()}
    _log(
        "converted SNN accuracy: "
        + ", ".join(f"T={t} {100 * a:.1f}%" for t, a in converted_acc.items()),
        verbose,
    )

    # 3. direct training with surrogate gradients
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    spiking = spiking_cnn(config.width).to(dev)
    t_train = config.snn_train_steps
    snn_losses = train(
        spiking,
        lambda m, x: snn_logits(m, x, t_train),
        data.x_train,
        data.y_train,
        epochs=config.snn_epochs,
        lr=5e-3,
        batch_size=config.snn_batch_size,
        seed=config.seed,
        desc="SNN",
        progress=progress,
    )
    trained_acc = snn_accuracy_vs_steps(spiking, data.x_test, data.y_test, config.steps)
    timings["train_snn_s"] = time.perf_counter() - t0
    _log(
        "trained SNN accuracy: "
        + ", ".join(f"T={t} {100 * a:.1f}%" for t, a in trained_acc.items()),
        verbose,
    )

    # 4. energy
    t0 = time.perf_counter()
    x_e = data.x_test[: config.energy_samples]
    with torch.no_grad():
        energy = energy_table(
            ann,
            x_e,
            {
                f"converted (T={config.convert_steps})": (
                    converted,
                    lambda: (snn.reset(converted), converted(x_e, steps=config.convert_steps)),
                ),
                f"trained (T={t_train})": (spiking, lambda: snn_logits(spiking, x_e, t_train)),
            },
            config.targets,
            config.ann_target,
        )
    timings["energy_s"] = time.perf_counter() - t0

    # 5. figures
    t0 = time.perf_counter()
    snn.reset(spiking)
    with Monitor(spiking) as mon, torch.no_grad():
        spiking(data.x_test[:32].unsqueeze(0).expand(t_train * 4, 32, 1, 8, 8))
    first = mon.layers[0]
    curves = {"converted CNN": converted_acc, f"trained SNN (T={t_train})": trained_acc}
    figures = {
        "accuracy_vs_steps.png": viz.accuracy_vs_steps(
            curves, references={"CNN": ann_acc}, title="digits 8x8: accuracy vs time steps"
        ),
        "energy.png": viz.energy_bars(
            {
                f"CNN\n{config.ann_target}": energy["ann"]["by_category"],
                **{
                    f"{name.split(' ')[0]}\n{target}": entry["by_category"]
                    for name, per in energy["snn"].items()
                    for target, entry in per["targets"].items()
                },
            },
            log=True,
            title="energy per inference (log scale)",
        ),
        "spike_raster.png": viz.spike_raster(
            mon.spikes(first), title=f"trained SNN, layer {first!r}, one test digit"
        ),
        "firing_rates.png": viz.firing_rate_histogram(mon, title="trained SNN firing rates"),
    }
    for name, fig in figures.items():
        _save_figure(fig, out / name)
    timings["figures_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - started

    report = {
        "library": {"snn": snn.__version__, "torch": torch.__version__},
        "machine": {
            "python": platform.python_version(),
            "device": str(dev),
            "cpu_threads": torch.get_num_threads(),
        },
        "config": asdict(config),
        "data": {
            "name": "scikit-learn digits (8x8)",
            "train": len(data.x_train),
            "test": len(data.x_test),
        },
        "ann": {"test_accuracy": ann_acc, "loss_per_epoch": ann_losses},
        "converted": {
            "test_accuracy": converted_acc,
            "normalised_ann_accuracy": result.analog_accuracy,
            "agreement_with_ann": {int(t): float(a) for t, a in result.agreement.items()},
            "firing_rates": {
                k: {int(t): r for t, r in v.items()} for k, v in result.firing_rates.items()
            },
            "conversion": _report_dict(conv_report),
        },
        "trained": {
            "train_steps": t_train,
            "test_accuracy": trained_acc,
            "loss_per_epoch": snn_losses,
            "firing_rates": mon.firing_rates(),
        },
        "energy": energy,
        "timings": timings,
        "files": list(REPORT_FILES),
    }
    _write_atomic(out / "report.json", json.dumps(report, indent=2).encode())
    _write_atomic(out / "summary.md", summary_markdown(report).encode())
    _log(f"report written to {out} ({timings['total_s']:.1f} s)", verbose)
    return report


def _report_dict(conv_report: Any) -> Any:
    for attr in ("to_dict", "as_dict"):
        if hasattr(conv_report, attr):
            return getattr(conv_report, attr)()
    return str(conv_report)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def summary_markdown(report: dict[str, Any]) -> str:
    """The short Markdown summary of a demo report."""
    conv = {int(t): a for t, a in report["converted"]["test_accuracy"].items()}
    trained = {int(t): a for t, a in report["trained"]["test_accuracy"].items()}
    steps = sorted(set(conv) | set(trained))
    lines = [
        "# snn demo: digits 8x8",
        "",
        f"Data: {report['data']['name']}, {report['data']['train']} training and "
        f"{report['data']['test']} test images. Device: {report['machine']['device']}. "
        f"Total time: {report['timings']['total_s']:.1f} s.",
        "",
        f"CNN test accuracy: **{_pct(report['ann']['test_accuracy'])}**.",
        "",
        "## Accuracy against time steps",
        "",
        "| T | converted CNN | trained SNN |",
        "|---:|---:|---:|",
    ]
    for t in steps:
        c = _pct(conv[t]) if t in conv else "-"
        s = _pct(trained[t]) if t in trained else "-"
        lines.append(f"| {t} | {c} | {s} |")
    lines += [
        "",
        f"The SNN was trained with T = {report['trained']['train_steps']} steps. "
        "![accuracy](accuracy_vs_steps.png)",
        "",
        "## Energy per inference",
        "",
        f"CNN on {report['energy']['ann']['target']}: "
        f"{report['energy']['ann']['joules_per_sample']:.3g} J.",
        "",
        "| SNN | target | energy (J) | CNN / SNN | left out (ops/sample) |",
        "|---|---|---:|---:|---:|",
    ]
    for name, per in report["energy"]["snn"].items():
        for target, entry in per["targets"].items():
            ratio = entry["ratio_ann_over_snn"]
            bound = "" if entry["complete"] else "≤ "
            energy = ("" if entry["complete"] else "≥ ") + f"{entry['joules_per_sample']:.3g}"
            lines.append(
                f"| {name} | {target} | {energy} | "
                f"{'-' if ratio is None else f'{bound}{ratio:.2f}'} | "
                f"{entry['unpriced_ops_per_sample']:.3g}"
                + (f" (+{len(entry['uncounted'])} uncounted kinds)" if entry["uncounted"] else "")
                + " |"
            )
    lines += [
        "",
        "Energies are estimates: counted operations times published energies per operation "
        "(see `snn.energy.TARGETS` for the sources). Where a target has no figure for some "
        "operations (e.g. the multiply-accumulates of the analog first layer on Loihi or "
        "TrueNorth), or an operation could not be counted (torch functions outside modules), "
        "it is left out and listed in `report.json`: the energy is then a lower bound (≥) and "
        "the ratio an upper bound (≤). ![energy](energy.png)",
        "",
        "Figures: `spike_raster.png`, `firing_rates.png`; all numbers: `report.json`.",
        "",
    ]
    return "\n".join(lines)
