"""Energy report: counts priced on a hardware target, with the equivalent ANN beside them.

Energy per layer falls into four categories (:data:`snn.energy.targets.CATEGORIES`):

- ``compute``: ACs (and pooling/ReLU additions or comparisons) times the target's ``ac``,
  MACs (and batch-norm multiply-adds) times ``mac``;
- ``memory``: all counted memory accesses times ``memory_access``;
- ``neuron``: neuron updates times ``neuron_update`` (active) and ``neuron_update_inactive``
  (neurons without input at that step) when the target distinguishes them;
- ``communication``: spikes times ``spike + mean_hops * hop``.

A category the target declares as *included* in another figure costs nothing extra (e.g.
memory on Loihi, everything but the synaptic event on TrueNorth). Counted work the target has no
figure for is listed in :attr:`EnergyReport.unpriced`, and layers or functions the counter could
not count in :attr:`EnergyReport.uncounted`; :attr:`EnergyReport.complete` is ``False`` when
either list is non-empty.

The equivalent ANN replaces every spiking neuron with a ReLU and runs each layer densely once
per sample (the SNN's dense counts divided by its time steps); non-spiking neurons (readouts)
become identities. Its memory traffic follows the frame-based model of
:mod:`snn.energy.rules`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from snn._files import atomic_write_text
from snn.energy.counts import LayerCounts, ModelCounts
from snn.energy.metrics import neurobench_metrics
from snn.energy.targets import CATEGORIES, Figure, HardwareTarget, get_target

__all__ = ["EnergyReport", "LayerEnergy", "format_energy"]


def format_energy(joules: float | None) -> str:
    """``1.23 mJ``-style text (``-`` for ``None``)."""
    if joules is None:
        return "-"
    if joules == 0:
        return "0 J"
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("uJ", 1e-6), ("nJ", 1e-9), ("pJ", 1e-12)):
        if abs(joules) >= scale:
            return f"{joules / scale:.3g} {unit}"
    return f"{joules / 1e-15:.3g} fJ"


@dataclass(frozen=True)
class LayerEnergy:
    """Energy of one layer by category (joules), SNN or ANN."""

    name: str
    type: str
    kind: str
    compute: float
    memory: float
    neuron: float
    communication: float

    @property
    def total(self) -> float:
        """Sum of the four categories."""
        return self.compute + self.memory + self.neuron + self.communication

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type, "kind": self.kind,
            **{c: getattr(self, c) for c in CATEGORIES}, "total": self.total,
        }


class _Pricer:
    """Prices counts on one target and remembers what it could not price."""

    def __init__(self, target: HardwareTarget, mean_hops: float, model: str):
        self.target = target
        self.mean_hops = mean_hops
        self.model = model
        self.unpriced: list[dict[str, Any]] = []

    def price(self, layer: str, category: str, what: str, count: float,
              figure: Figure | None) -> float:
        if not count or category in self.target.included:
            return 0.0
        if figure is None:
            self.unpriced.append({
                "model": self.model, "layer": layer, "category": category, "what": what,
                "count": count,
                "reason": f"target {self.target.name!r} has no figure for {what}",
            })
            return 0.0
        return count * figure.joules

    def layer(self, layer: LayerCounts, counts: dict[str, float]) -> LayerEnergy:
        t, name = self.target, layer.name
        compute = (
            self.price(name, "compute", "ACs", counts["acs"], t.ac)
            + self.price(name, "compute", "MACs", counts["macs"], t.mac)
            + self.price(name, "compute", "additions/comparisons (as ACs)",
                         counts["other_adds"], t.ac)
            + self.price(name, "compute", "elementwise multiply-adds (as MACs)",
                         counts["other_macs"], t.mac)
        )
        memory = self.price(name, "memory", "memory accesses", counts["memory"], t.memory_access)
        active, inactive = counts["active_updates"], counts["updates"] - counts["active_updates"]
        if t.neuron_update_inactive is not None:
            neuron = (
                self.price(name, "neuron", "active neuron updates", active, t.neuron_update)
                + self.price(name, "neuron", "inactive neuron updates", inactive,
                             t.neuron_update_inactive)
            )
        else:
            neuron = self.price(name, "neuron", "neuron updates", counts["updates"],
                                t.neuron_update)
        communication = self.price(name, "communication", "spikes", counts["spikes"], t.spike)
        if self.mean_hops and counts["spikes"]:
            communication += self.price(name, "communication", "spike hops",
                                        counts["spikes"] * self.mean_hops, t.hop)
        return LayerEnergy(name, layer.type, layer.kind, compute, memory, neuron, communication)


def _snn_counts(x: LayerCounts) -> dict[str, float]:
    return {
        "acs": x.acs, "macs": x.macs, "other_adds": x.other_adds, "other_macs": x.other_macs,
        "memory": x.memory_accesses, "updates": x.neuron_updates,
        "active_updates": x.active_updates, "spikes": x.spikes,
    }


def _ann_counts(x: LayerCounts, steps: float) -> dict[str, float]:
    """Counts of the equivalent ANN layer per the module docstring."""
    zero = dict.fromkeys(("acs", "macs", "other_adds", "other_macs", "memory", "updates",
                          "active_updates", "spikes"), 0.0)
    if x.kind == "synaptic":
        zero["macs"] = x.dense_macs / steps
        zero["memory"] = (2 * x.dense_macs + x.outputs) / steps
    elif x.kind == "neuron" and x.reason != "non-spiking":
        zero["other_adds"] = x.neuron_updates / steps  # ReLU: one comparison per element
        zero["memory"] = 2 * x.neuron_updates / steps
    elif x.kind in ("activation", "pool"):
        zero["other_adds"] = x.dense_other_adds / steps
        zero["memory"] = (x.dense_other_adds + x.outputs) / steps
    elif x.kind == "norm":
        zero["other_macs"] = x.dense_other_macs / steps
        zero["memory"] = (x.dense_other_macs + x.outputs) / steps
    return zero


class EnergyReport:
    """Counts of a model priced on a hardware target, with the equivalent ANN.

    Args:
        counts: the :class:`~snn.energy.counts.ModelCounts` of an :class:`OpCounter`.
        target: registry name or :class:`~snn.energy.targets.HardwareTarget` for the network.
        ann_target: target for the equivalent ANN (default: the same target; a neuromorphic
            target without a MAC figure leaves the ANN's MACs unpriced, so pass e.g.
            ``"cmos45_fp32"``).
        mean_hops: mean router hops per spike (placement dependent; 0 prices local spikes).

    Raises:
        ValueError: for an unknown target name or a negative ``mean_hops``.
    """

    def __init__(
        self,
        counts: ModelCounts,
        target: str | HardwareTarget = "cmos45_fp32",
        *,
        ann_target: str | HardwareTarget | None = None,
        mean_hops: float = 0.0,
    ):
        if not isinstance(counts, ModelCounts):
            raise TypeError(f"counts must be ModelCounts, got {type(counts).__name__}")
        if mean_hops < 0:
            raise ValueError(f"mean_hops must be >= 0, got {mean_hops}")
        self.counts = counts
        self.target = get_target(target)
        self.ann_target = self.target if ann_target is None else get_target(ann_target)
        self.mean_hops = float(mean_hops)
        snn_pricer = _Pricer(self.target, self.mean_hops, "snn")
        ann_pricer = _Pricer(self.ann_target, 0.0, "ann")
        self.layers = [snn_pricer.layer(x, _snn_counts(x)) for x in counts.layers]
        self.ann_layers = [
            ann_pricer.layer(x, _ann_counts(x, counts.steps)) for x in counts.layers
        ]
        self.unpriced = snn_pricer.unpriced + ann_pricer.unpriced

    # -- totals ----------------------------------------------------------------------------
    @staticmethod
    def _sum(layers: list[LayerEnergy]) -> dict[str, float]:
        out = {c: sum(getattr(x, c) for x in layers) for c in CATEGORIES}
        out["total"] = sum(out[c] for c in CATEGORIES)
        return out

    @property
    def totals(self) -> dict[str, float]:
        """SNN energy by category and ``"total"`` (joules, all samples)."""
        return self._sum(self.layers)

    @property
    def ann_totals(self) -> dict[str, float]:
        """Equivalent-ANN energy by category and ``"total"`` (joules, same samples)."""
        return self._sum(self.ann_layers)

    @property
    def per_sample(self) -> dict[str, float]:
        """SNN and ANN total energy per sample (joules)."""
        n = self.counts.samples
        return {"snn": self.totals["total"] / n, "ann": self.ann_totals["total"] / n}

    @property
    def ratio(self) -> float | None:
        """ANN energy over SNN energy (> 1: the SNN uses less); ``None`` if the SNN's is 0."""
        snn = self.totals["total"]
        return self.ann_totals["total"] / snn if snn else None

    @property
    def uncounted(self) -> list[str]:
        """Layers and torch functions the counter could not count."""
        return self.counts.uncounted

    @property
    def complete(self) -> bool:
        """Whether everything the model did was counted and priced."""
        return not self.unpriced and not self.uncounted

    # -- output ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able dictionary of the whole report (energies in joules)."""
        return {
            "target": self.target.to_dict(),
            "ann_target": self.ann_target.name,
            "mean_hops": self.mean_hops,
            "steps": self.counts.steps,
            "samples": self.counts.samples,
            "totals": self.totals,
            "ann_totals": self.ann_totals,
            "per_sample": self.per_sample,
            "ratio_ann_over_snn": self.ratio,
            "dense_macs_per_step_per_sample": self.counts.total("dense_macs")
            / (self.counts.steps * self.counts.samples),
            "complete": self.complete,
            "metrics": neurobench_metrics(self.counts),
            "layers": [
                {**c.to_dict(), "energy": e.to_dict(), "ann_energy": a.to_dict()}
                for c, e, a in zip(self.counts.layers, self.layers, self.ann_layers)
            ],
            "unpriced": self.unpriced,
            "uncounted": self.uncounted,
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The report as JSON text; also written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            atomic_write_text(path, text)
        return text

    def to_text(self) -> str:
        """A fixed-width table per layer, totals, the ANN comparison and every caveat."""
        c = self.counts
        lines = [
            f"Energy on {self.target.name}: {self.target.description}",
            f"{c.samples} sample(s), {c.steps:g} time step(s) each; equivalent ANN on "
            f"{self.ann_target.name}",
            "",
        ]
        header = ("layer", "kind", "ACs", "MACs", "updates", "spikes", "mem acc",
                  "compute", "memory", "neuron", "comm", "total")
        rows = [header]
        for x, e in zip(c.layers, self.layers):
            if not x.calls:
                continue
            rows.append((
                x.name or "<model>", x.kind, f"{x.acs:,}", f"{x.macs:,}",
                f"{x.neuron_updates:,}", f"{x.spikes:,}", f"{x.memory_accesses:,}",
                *(format_energy(getattr(e, k)) for k in CATEGORIES), format_energy(e.total),
            ))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for r in rows:
            lines.append("  ".join(
                v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))
            ))
        t, a = self.totals, self.ann_totals
        lines += ["", "category       SNN          ANN"]
        for k in (*CATEGORIES, "total"):
            lines.append(f"{k:<14} {format_energy(t[k]):<12} {format_energy(a[k])}")
        ratio = self.ratio
        lines.append(
            f"ANN / SNN energy: {ratio:.3g}" if ratio is not None else "ANN / SNN energy: -"
        )
        m = neurobench_metrics(c)
        lines.append(
            "per sample: effective ACs {effective_acs:,.0f}, effective MACs {effective_macs:,.0f}, "
            "dense {dense:,.0f}".format(**m)
        )
        lines.append(
            f"dense MACs per time step and sample: {m['dense_macs'] / c.steps:,.0f}"
        )
        if m["activation_sparsity"] is not None:
            lines.append(f"activation sparsity {m['activation_sparsity']:.4f}")
        for cat, why in self.target.included.items():
            lines.append(f"{cat} included in other figures on {self.target.name}: {why}")
        if not self.complete:
            lines += ["", "INCOMPLETE: the totals leave out"]
            for u in self.unpriced:
                lines.append(f"  unpriced ({u['model']}) {u['layer'] or '<model>'}: "
                             f"{u['count']:,.0f} {u['what']} ({u['reason']})")
            for u in self.uncounted:
                lines.append(f"  uncounted {u}")
        lines += ["", "figures:"]
        targets = {self.target.name: self.target, self.ann_target.name: self.ann_target}
        for target in targets.values():
            for op, f in target.figures().items():
                lines.append(f"  {target.name}.{op} = {f.picojoules:g} pJ [{f.kind}] {f.source}"
                             + (f" ({f.note})" if f.note else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def plot(self, ax=None, *, include_ann: bool = True):
        """Stacked bars of energy per layer by category (and SNN vs ANN totals).

        Args:
            ax: a matplotlib axes for the per-layer bars (a new figure when ``None``).
            include_ann: add a second axes with the SNN and ANN totals.

        Returns:
            the matplotlib ``Figure``.
        """
        import matplotlib.pyplot as plt

        shown = [(x, e) for x, e in zip(self.counts.layers, self.layers) if x.calls]
        if ax is None:
            ncols = 2 if include_ann else 1
            fig, axes = plt.subplots(
                1, ncols, figsize=(max(6.0, 0.5 * len(shown) + 3), 4),
                gridspec_kw={"width_ratios": [4, 1]} if include_ann else None, squeeze=False,
            )
            ax, ax_tot = axes[0][0], (axes[0][1] if include_ann else None)
        else:
            fig, ax_tot = ax.figure, None
        names = [x.name or "<model>" for x, _ in shown]
        bottom = [0.0] * len(shown)
        for cat in CATEGORIES:
            values = [getattr(e, cat) for _, e in shown]
            ax.bar(range(len(shown)), values, bottom=bottom, label=cat)
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_xticks(range(len(shown)))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("energy (J)")
        title = f"SNN energy per layer on {self.target.name}"
        ax.set_title(title if self.complete else f"{title} (incomplete: see the report text)")
        ax.legend(fontsize=7)
        if ax_tot is not None:
            bottom2 = [0.0, 0.0]
            for cat in CATEGORIES:
                vals = [self.totals[cat], self.ann_totals[cat]]
                ax_tot.bar([0, 1], vals, bottom=bottom2, label=cat)
                bottom2 = [b + v for b, v in zip(bottom2, vals)]
            ax_tot.set_xticks([0, 1])
            ax_tot.set_xticklabels(["SNN", f"ANN\n({self.ann_target.name})"], fontsize=7)
            ax_tot.set_title("totals")
        fig.tight_layout()
        return fig
