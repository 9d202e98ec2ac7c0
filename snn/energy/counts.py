"""Containers for operation counts: per layer (:class:`LayerCounts`) and per model
(:class:`ModelCounts`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["KINDS", "LayerCounts", "ModelCounts"]

KINDS = ("synaptic", "neuron", "activation", "norm", "pool", "elementwise", "free",
         "uncounted")
"""What a counted layer is:

- ``synaptic``: weighted connections (Linear, Conv): ACs, MACs, dense counts, weight reads;
- ``neuron``: a neuron of :mod:`snn.neurons` (state updates, spikes);
- ``activation``: an ANN activation (ReLU family): one comparison per element;
- ``norm``: batch norm, one multiply-add per element (foldable into the previous layer);
- ``pool``: max/average pooling, one accumulate or comparison per (input, window) pair;
- ``elementwise``: additions of activations (a converted network's residual additions), one
  accumulate per input event or one addition per element;
- ``free``: data movement or bookkeeping with no arithmetic (Flatten, Identity, Dropout at
  inference, encoders and readouts of :mod:`snn.layers`), listed with the reason;
- ``uncounted``: a module the counter has no rule for; its work is unknown, never zero.
"""


@dataclass
class LayerCounts:
    """Operation and memory-access counts of one module, summed over all its calls.

    Synaptic operations (``synaptic`` layers):
        acs: accumulates, i.e. synaptic operations driven by binary inputs (values in
            {-1, 0, 1}): each nonzero input element times its exact fan-out.
        macs: multiply-accumulates of calls whose input is not binary, counted the same way
            (zero inputs skipped: *effective* MACs).
        dense_macs: MACs of the equivalent dense layer as layer-wise MAC counters report them
            (every output times its kernel taps, padding included; bias excluded).
        dense_synops: every input element times its fan-out through all weights (padding not
            included): NeuroBench's "Dense" synaptic operations.

    Elementwise work (``activation``, ``norm``, ``pool``):
        other_adds / other_macs: effective additions-or-comparisons and multiply-adds.
        dense_other_adds / dense_other_macs: the same for dense (all-nonzero) inputs.

    Neurons:
        neuron_updates: neuron state updates (neurons times time steps times batch);
        active_updates: updates of neurons whose input was nonzero at that step;
        spikes: spikes emitted; state_vars: state variables per neuron.

    Memory accesses (analytical, no reuse; see :mod:`snn.energy.counter`):
        weight_reads, input_reads, state_reads, state_writes, output_writes.

    Activity:
        inputs, input_nonzero, outputs, output_nonzero: elements seen and their nonzeros.
    """

    name: str
    type: str
    kind: str
    reason: str = ""
    calls: int = 0
    acs: int = 0
    macs: int = 0
    dense_macs: int = 0
    dense_synops: int = 0
    other_adds: int = 0
    other_macs: int = 0
    dense_other_adds: int = 0
    dense_other_macs: int = 0
    neuron_updates: int = 0
    active_updates: int = 0
    spikes: int = 0
    state_vars: int = 0
    weight_reads: int = 0
    input_reads: int = 0
    state_reads: int = 0
    state_writes: int = 0
    output_writes: int = 0
    inputs: int = 0
    input_nonzero: int = 0
    outputs: int = 0
    output_nonzero: int = 0
    param_bytes: int = 0

    @property
    def synops(self) -> int:
        """Effective synaptic operations, ACs plus MACs."""
        return self.acs + self.macs

    @property
    def memory_accesses(self) -> int:
        """All counted memory reads and writes."""
        return (
            self.weight_reads + self.input_reads + self.state_reads + self.state_writes
            + self.output_writes
        )

    @property
    def firing_rate(self) -> float | None:
        """Spikes per neuron update (``None`` when the layer is no neuron or never ran)."""
        if self.kind != "neuron" or not self.neuron_updates:
            return None
        return self.spikes / self.neuron_updates

    def to_dict(self) -> dict[str, Any]:
        """All fields plus ``synops`` and ``firing_rate``, JSON-able."""
        out = asdict(self)
        out["synops"] = self.synops
        out["firing_rate"] = self.firing_rate
        return out


COUNT_FIELDS = tuple(
    f.name for f in fields(LayerCounts) if f.type in ("int", int) and f.name not in ("state_vars",)
)


@dataclass(frozen=True)
class ModelCounts:
    """Counts of a whole model over the forward calls seen by an :class:`OpCounter`.

    Args:
        layers: per-module counts, in module order.
        steps: time steps per sample (1 for a network without neurons).
        samples: samples processed (batch elements summed over calls).
        calls: forward calls of the model.
        functional: ``{"module: function": calls}`` of arithmetic done by torch functions in a
            container's ``forward`` (e.g. a residual ``out + identity``): no module hook sees
            it, so it is listed as uncounted.
        footprint_bytes: bytes of all parameters and buffers of the model.
        spiking: whether the model contains spiking neurons.
    """

    layers: tuple[LayerCounts, ...]
    steps: float
    samples: int
    calls: int
    functional: dict[str, int] = field(default_factory=dict)
    footprint_bytes: int = 0
    spiking: bool = False

    def total(self, name: str) -> int:
        """Sum of one count field over all layers (e.g. ``total("acs")``)."""
        if name not in COUNT_FIELDS and name not in ("synops", "memory_accesses"):
            raise ValueError(f"unknown count {name!r}; expected one of {COUNT_FIELDS}")
        return sum(getattr(layer, name) for layer in self.layers)

    def layer(self, name: str) -> LayerCounts:
        """Counts of the module with qualified name ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no counted layer {name!r}; layers: {[x.name for x in self.layers]}")

    @property
    def uncounted(self) -> list[str]:
        """What the counter saw but could not count, one line each."""
        lines = [
            f"{x.name} ({x.type}): {x.reason}" for x in self.layers
            if x.kind == "uncounted" and x.calls
        ]
        lines += [f"{name} x{n}: torch function outside any module" for name, n in
                  self.functional.items()]
        return lines

    @property
    def activation_sparsity(self) -> float | None:
        """Fraction of zero outputs over spiking neurons and ANN activations (NeuroBench's
        activation sparsity); ``None`` when there are none."""
        total = nonzero = 0
        for x in self.layers:
            if x.kind == "activation" or (x.kind == "neuron" and x.reason != "non-spiking"):
                total += x.outputs
                nonzero += x.output_nonzero
        if not total:
            return None
        return (total - nonzero) / total

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dictionary: totals, per-layer counts, uncounted items."""
        return {
            "steps": self.steps,
            "samples": self.samples,
            "calls": self.calls,
            "spiking": self.spiking,
            "footprint_bytes": self.footprint_bytes,
            "totals": {name: self.total(name) for name in COUNT_FIELDS},
            "activation_sparsity": self.activation_sparsity,
            "layers": [x.to_dict() for x in self.layers],
            "uncounted": self.uncounted,
        }
