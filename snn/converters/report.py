"""What the converter did to each layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ConversionReport", "LayerReport"]


@dataclass
class LayerReport:
    """One operation of the ANN and what became of it.

    Attributes:
        name: graph node (or module) name.
        op: the original operation (``nn.ReLU``, ``F.relu``, ``nn.BatchNorm2d``, ...).
        action: what the converter did (``"IF neuron"``, ``"folded into conv1"``, ...).
        source: ``file:line: code`` of the model source, when known.
        threshold: the IF threshold (a float, or a list for channel-wise thresholds).
        v_init: initial membrane potential as a fraction of the threshold.
        stats: activation statistics on the calibration data (``max``, ``scale``, ...).
    """

    name: str
    op: str
    action: str
    source: str | None = None
    threshold: float | list[float] | None = None
    v_init: float | None = None
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConversionReport:
    """The record of one conversion: options, passes run (with their time) and layers.

    Attributes:
        options: the conversion options.
        passes: ``(name, seconds)`` of every pass, in order.
        layers: one :class:`LayerReport` per converted, folded or removed operation.
        notes: remarks (dead layers, fallbacks).
    """

    options: dict[str, Any] = field(default_factory=dict)
    passes: list[tuple[str, float]] = field(default_factory=list)
    layers: list[LayerReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def layer(self, name: str) -> LayerReport:
        """The entry of layer ``name``.

        Raises:
            KeyError: when there is none.
        """
        for entry in self.layers:
            if entry.name == name:
                return entry
        raise KeyError(f"no layer {name!r} in the report; layers: {[e.name for e in self.layers]}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"conversion ({', '.join(f'{k}={v}' for k, v in self.options.items())})"]
        lines.append("passes: " + ", ".join(f"{n} {s * 1e3:.1f} ms" for n, s in self.passes))
        width = max([len(e.name) for e in self.layers] + [5])
        for e in self.layers:
            th = ""
            if isinstance(e.threshold, float):
                th = f"  threshold={e.threshold:.4g}"
            elif isinstance(e.threshold, list):
                th = (f"  threshold=[{min(e.threshold):.3g}..{max(e.threshold):.3g}] "
                      f"({len(e.threshold)} channels)")
            lines.append(f"  {e.name:<{width}}  {e.op:<18} -> {e.action}{th}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)
