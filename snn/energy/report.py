"""Energy report: counts priced on a hardware target, with the equivalent ANN beside them.

Energy per layer falls into four categories (:data:`snn.energy.targets.CATEGORIES`):

- ``compute``: ACs (and pooling/ReLU/layer-norm additions or comparisons) times the target's
  ``ac``, MACs (and batch- and layer-norm multiply-adds) times ``mac``;
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

__all__ = ["EnergyReport", "LayerEnergy", "figure_sources", "format_energy", "plot_reports"]


def format_energy(joules: float | None) -> str:
    """``1.23 mJ``-style text with an SI prefix (``-`` for ``None``)."""
    if joules is None:
        return "-"
    if joules == 0:
        return "0 J"
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("\u00b5J", 1e-6), ("nJ", 1e-9), ("pJ", 1e-12)):
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
    elif x.kind in ("activation", "pool", "elementwise"):
        zero["other_adds"] = x.dense_other_adds / steps
        zero["memory"] = (x.dense_other_adds + x.outputs) / steps
    elif x.kind == "norm":
        zero["other_adds"] = x.dense_other_adds / steps  # layer norm's sums; 0 for batch norm
        zero["other_macs"] = x.dense_other_macs / steps
        zero["memory"] = (x.dense_other_macs + x.dense_other_adds + x.outputs) / steps
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
    def snn_is_lower_bound(self) -> bool:
        """Whether the network's total leaves out work (unpriced or uncounted): the true
        energy is at least the total."""
        return bool(self.uncounted) or any(u["model"] == "snn" for u in self.unpriced)

    @property
    def ann_is_lower_bound(self) -> bool:
        """Whether the equivalent ANN's total leaves out work (unpriced or uncounted)."""
        return bool(self.uncounted) or any(u["model"] == "ann" for u in self.unpriced)

    @property
    def ratio_bound(self) -> str | None:
        """How :attr:`ratio` relates to the true ratio: ``"="`` (both totals complete),
        ``"<="`` (the network's total is a lower bound, so the true ratio is at most
        :attr:`ratio`), ``">="`` (the ANN's total is a lower bound) or ``None`` (both are: no
        bound follows)."""
        snn, ann = self.snn_is_lower_bound, self.ann_is_lower_bound
        if snn and ann:
            return None
        return "<=" if snn else (">=" if ann else "=")

    @property
    def spiking(self) -> bool:
        """Whether the counted network has spiking neurons (otherwise it is itself an ANN,
        and the text calls it "network", not "SNN")."""
        return any(
            x.kind == "neuron" and x.reason != "non-spiking" and x.calls
            for x in self.counts.layers
        )

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
            "ratio_bound": self.ratio_bound,
            "snn_is_lower_bound": self.snn_is_lower_bound,
            "ann_is_lower_bound": self.ann_is_lower_bound,
            "spiking": self.spiking,
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

    def to_text(self, *, sources: bool = True) -> str:
        """A fixed-width table per layer, totals, the ANN comparison and every caveat.

        Totals that leave out work are printed as ``>= x`` and the ratio with the bound it
        inherits (:attr:`ratio_bound`). The network's column is headed ``SNN`` only when it
        has spiking neurons.

        Args:
            sources: end with the source of every energy figure used (pass ``False`` when
                printing several reports, then print :func:`figure_sources` once).
        """
        c = self.counts
        net = "SNN" if self.spiking else "network"
        lines = [
            f"Energy on {self.target.name}: {self.target.description}",
            f"{c.samples} sample(s), {c.steps:g} time step(s) each; equivalent ANN on "
            f"{self.ann_target.name}"
            + ("" if self.spiking else " (the network has no spiking neurons: it is an ANN)"),
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
        ge_snn = ">= " if self.snn_is_lower_bound else ""
        ge_ann = ">= " if self.ann_is_lower_bound else ""
        lines += ["", f"{'category':<14} {net + ' on ' + self.target.name:<22} "
                  f"equivalent ANN on {self.ann_target.name}"]
        for k in (*CATEGORIES, "total"):
            lines.append(f"{k:<14} {ge_snn + format_energy(t[k]):<22} "
                         f"{ge_ann + format_energy(a[k])}")
        lines.append(self._ratio_text(net))
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
                who = net if u["model"] == "snn" else "ANN"
                lines.append(f"  unpriced ({who}) {u['layer'] or '<model>'}: "
                             f"{u['count']:,.0f} {u['what']} ({u['reason']})")
            for u in self.uncounted:
                lines.append(f"  uncounted {u}")
        if sources:
            lines += ["", figure_sources([self])]
        return "\n".join(lines)

    def _ratio_text(self, net: str) -> str:
        ratio, bound = self.ratio, self.ratio_bound
        label = f"ANN / {net} energy"
        if ratio is None:
            return f"{label}: - ({net} energy is 0)"
        if bound == "=":
            return f"{label}: {ratio:.3g}"
        if bound == "<=":
            return (f"{label}: <= {ratio:.3g} (the {net} total leaves out work, see "
                    "INCOMPLETE below, so the true ratio can only be smaller)")
        if bound == ">=":
            return (f"{label}: >= {ratio:.3g} (the ANN total leaves out work, see "
                    "INCOMPLETE below, so the true ratio can only be larger)")
        return (f"{label}: unknown (both totals leave out work, see INCOMPLETE below; "
                f"{ratio:.3g} is no bound)")

    def __str__(self) -> str:
        return self.to_text()

    def plot(self, ax=None, *, include_ann: bool = True):
        """Stacked bars of energy per layer by category (and the network vs ANN totals), in
        joules with an SI prefix; layers are named by their module path.

        Args:
            ax: a matplotlib axes for the per-layer bars (a new figure when ``None``).
            include_ann: add a second axes with the network's and the ANN's totals.

        Returns:
            the matplotlib ``Figure``.
        """
        if ax is not None:
            _layer_bars(self, ax)
            ax.legend(fontsize="small")
            return ax.figure
        return plot_reports([self], include_ann=include_ann)


def figure_sources(reports: list[EnergyReport]) -> str:
    """The energy figures of every target the reports use, each target once, with sources."""
    targets: dict[str, HardwareTarget] = {}
    for r in reports:
        targets.setdefault(r.target.name, r.target)
        targets.setdefault(r.ann_target.name, r.ann_target)
    lines = ["energy figures used:"]
    for target in targets.values():
        for op, f in target.figures().items():
            lines.append(f"  {target.name}.{op} = {f.picojoules:g} pJ [{f.kind}] {f.source}"
                         + (f" ({f.note})" if f.note else ""))
    return "\n".join(lines)


def _layer_bars(report: EnergyReport, ax: Any) -> None:
    from snn.viz import si_scale

    shown = [(x, e) for x, e in zip(report.counts.layers, report.layers) if x.calls]
    names = [f"{x.name or '<model>'} ({x.type})" for x, _ in shown]
    scale, unit = si_scale(max([e.total for _, e in shown] + [0.0]))
    bottom = [0.0] * len(shown)
    for i, cat in enumerate(CATEGORIES):
        values = [getattr(e, cat) / scale for _, e in shown]
        ax.bar(range(len(shown)), values, bottom=bottom, label=cat, color=f"C{i}")
        bottom = [b + v for b, v in zip(bottom, values)]
    missing = {u["layer"] for u in report.unpriced if u["model"] == "snn"}
    top = max([*bottom, 0.0])
    for i, (x, _) in enumerate(shown):
        if x.name in missing:
            ax.annotate("unpriced\nwork", (i, bottom[i] + 0.01 * top), ha="center",
                        va="bottom", fontsize="x-small", color="C3")
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize="small")
    ax.set_xlabel("layer (module path)")
    ax.set_ylabel(f"energy ({unit}, {report.counts.samples} sample(s))")
    net = "SNN" if report.spiking else "network"
    title = f"{net} energy per layer on {report.target.name}"
    if not report.complete:
        title += " (lower bound: work left out)"
    ax.set_title(title, fontsize="medium")
    ax.set_ylim(0, max(top, 1e-30) * 1.15)


def _total_bars(report: EnergyReport, ax: Any) -> None:
    from snn.viz import si_scale

    net = "SNN" if report.spiking else "network"
    t, a = report.totals, report.ann_totals
    scale, unit = si_scale(max(t["total"], a["total"]))
    bottom = [0.0, 0.0]
    for i, cat in enumerate(CATEGORIES):
        vals = [t[cat] / scale, a[cat] / scale]
        ax.bar([0, 1], vals, bottom=bottom, color=f"C{i}")
        bottom = [b + v for b, v in zip(bottom, vals)]
    ge = "\u2265 "
    marks = [ge if report.snn_is_lower_bound else "", ge if report.ann_is_lower_bound else ""]
    for x, (total, mark) in enumerate(zip(bottom, marks)):
        ax.annotate(f"{mark}{total:.3g} {unit}", (x, total), ha="center", va="bottom",
                    fontsize="small")
    ax.set_xticks([0, 1])
    ax.set_xticklabels([f"{net}\n{report.target.name}", f"ANN\n{report.ann_target.name}"],
                       fontsize="x-small")
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylabel(f"total energy ({unit})")
    ax.set_ylim(0, max([*bottom, 1e-30]) * 1.18)
    ratio, bound = report.ratio, report.ratio_bound
    if ratio is None:
        text = "ANN / " + net + ": -"
    elif bound is None:
        text = "ANN / " + net + ": unknown"
    else:
        sign = {"=": "=", "<=": "\u2264", ">=": "\u2265"}[bound]
        text = f"ANN / {net} {sign} {ratio:.3g}"
    ax.set_title(text, fontsize="medium")


def plot_reports(reports: list[EnergyReport], *, include_ann: bool = True) -> Any:
    """One figure of several reports (e.g. one per hardware target): a row per report with
    its per-layer bars and, with ``include_ann``, the totals beside the equivalent ANN.

    Energies are in joules with an SI prefix chosen per panel; totals that leave out work are
    marked ``>=`` and the ratio carries its bound (≤, ≥ or "unknown").

    Returns:
        a :class:`matplotlib.figure.Figure` (no pyplot state).
    """
    from snn.viz import _figure

    if not reports:
        raise ValueError("reports is empty; expected at least one EnergyReport")
    n_layers = max(sum(1 for x in r.counts.layers if x.calls) for r in reports)
    width = max(8.0, 0.45 * n_layers + (5.0 if include_ann else 2.5))
    fig = _figure(width, 4.2 * len(reports))
    grid = fig.add_gridspec(len(reports), 2 if include_ann else 1,
                            width_ratios=[4, 1.8] if include_ann else None)
    for row, report in enumerate(reports):
        ax = fig.add_subplot(grid[row, 0])
        _layer_bars(report, ax)
        if include_ann:
            _total_bars(report, fig.add_subplot(grid[row, 1]))
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), fontsize="small")
    return fig
