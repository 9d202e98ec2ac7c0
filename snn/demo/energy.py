"""Energy estimates of the demo's networks on the hardware targets of :mod:`snn.energy`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from snn.energy import CATEGORIES, EnergyReport, OpCounter

__all__ = ["count_model", "energy_table"]


def count_model(model: nn.Module, run: Callable[[], Any]):
    """Operation counts of ``model`` during ``run()`` (no gradients)."""
    counter = OpCounter(model)
    with counter, torch.no_grad():
        run()
    return counter.counts()


def _entry(report: EnergyReport, samples: int) -> dict[str, Any]:
    totals = report.totals
    return {
        "target": report.target.name,
        "joules_per_sample": totals["total"] / samples,
        "by_category": {c: totals[c] / samples for c in CATEGORIES},
        "complete": report.complete,
        "unpriced_ops_per_sample": sum(float(u["count"]) for u in report.unpriced) / samples,
        "unpriced": list(report.unpriced),
        "uncounted": list(report.uncounted),
    }


def energy_table(
    ann: nn.Module,
    x: Tensor,
    snns: dict[str, tuple[nn.Module, Callable[[], Any]]],
    targets: Sequence[str],
    ann_target: str = "cmos45_fp32",
) -> dict[str, Any]:
    """Energy per sample of the ANN on ``ann_target`` and of each SNN on each target.

    Args:
        ann: the CNN, run on ``x`` once.
        x: the input batch (its size is the number of samples).
        snns: ``{name: (model, run)}`` where ``run()`` simulates the model on ``x``.
        targets: hardware target names for the SNNs.
        ann_target: the target the ANN runs on.

    Returns:
        ``{"ann": entry, "snn": {name: {target: entry + ratio}}}`` with energies in joules per
        sample and ``ratio`` = ANN energy / SNN energy (> 1: the SNN needs less). An entry with
        ``complete`` false left operations unpriced (a target without a figure for them, e.g.
        the MACs of an analog first layer on Loihi): its energy is a lower bound and its ratio
        an upper bound.
    """
    samples = len(x)
    ann_counts = count_model(ann, lambda: ann(x))
    ann_entry = _entry(EnergyReport(ann_counts, ann_target), samples)
    out: dict[str, Any] = {"ann": ann_entry, "snn": {}}
    for name, (model, run) in snns.items():
        counts = count_model(model, run)
        per_target = {}
        for target in targets:
            entry = _entry(EnergyReport(counts, target, ann_target=ann_target), samples)
            e = entry["joules_per_sample"]
            entry["ratio_ann_over_snn"] = ann_entry["joules_per_sample"] / e if e > 0 else None
            per_target[target] = entry
        out["snn"][name] = {
            "steps": counts.steps,
            "spikes_per_sample": sum(layer.spikes for layer in counts.layers) / samples,
            "synaptic_ops_per_sample": sum(layer.acs + layer.macs for layer in counts.layers)
            / samples,
            "targets": per_target,
        }
    return out
