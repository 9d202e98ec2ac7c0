"""Energy estimates: operation counters, hardware target profiles and reports.

- :class:`OpCounter` / :func:`count_ops`: count synaptic operations (ACs and MACs with exact
  fan-outs), neuron updates, spikes and memory accesses during real forward passes;
- :data:`TARGETS` / :func:`get_target` / :func:`load_target`: published energies per operation
  of 45 nm CMOS (float32, int8), Loihi, TrueNorth and SpiNNaker 2, each with its source, or
  your own file;
- :class:`EnergyReport`: per-layer and total energy by category, the equivalent ANN, text,
  JSON and a figure;
- :func:`neurobench_metrics`: effective ACs/MACs, dense operations, activation sparsity and
  footprint under NeuroBench's definitions.

Example:
    >>> from snn.energy import OpCounter
    >>> with OpCounter(model) as counter:
    ...     model(x)
    >>> print(counter.report("loihi", ann_target="cmos45_fp32"))
"""

from snn.energy.counter import CountingError, OpCounter, count_ops
from snn.energy.counts import LayerCounts, ModelCounts
from snn.energy.metrics import NEUROBENCH_NAMES, neurobench_metrics
from snn.energy.report import EnergyReport, LayerEnergy, format_energy
from snn.energy.rules import RULES, find_rule, is_binary
from snn.energy.targets import (
    CATEGORIES,
    FIGURE_NAMES,
    HOROWITZ_2014,
    KINDS,
    TARGETS,
    Figure,
    HardwareTarget,
    get_target,
    load_target,
)

__all__ = [
    "CATEGORIES",
    "FIGURE_NAMES",
    "HOROWITZ_2014",
    "KINDS",
    "NEUROBENCH_NAMES",
    "RULES",
    "TARGETS",
    "CountingError",
    "EnergyReport",
    "Figure",
    "HardwareTarget",
    "LayerCounts",
    "LayerEnergy",
    "ModelCounts",
    "OpCounter",
    "count_ops",
    "find_rule",
    "format_energy",
    "get_target",
    "is_binary",
    "load_target",
    "neurobench_metrics",
]
