"""snn: spiking neural networks on PyTorch.

The top level re-exports the everyday API; subpackages hold the rest:

- :mod:`snn.surrogate`: surrogate spike functions;
- :mod:`snn.functional`: pure step/sequence functions of every neuron;
- :mod:`snn.neurons`: neuron modules (single-step and sequence modes, backends);
- :mod:`snn.layers`: time wrappers, encoders, readouts, losses, monitors;
- :mod:`snn.backends`: the backend dispatch table;
- :mod:`snn.datasets`: event-file readers, dataset classes, transforms, caching;
- :mod:`snn.energy`: operation counting and energy on neuromorphic targets;
- :mod:`snn.models`: reference architectures.

Sequences are time-first, ``[T, B, ...]``; a single step is ``[B, ...]``.
"""

from typing import Any

from snn import datasets, functional, layers, models, neurons, surrogate
from snn.backends import BackendUnavailableError, available_backends
from snn.layers import (
    DeltaEncoder,
    FiringRateRegularizer,
    LatencyEncoder,
    Monitor,
    PoissonEncoder,
    Recurrent,
    RepeatEncoder,
    SpikeCount,
    SpikeRate,
    TimeDistributed,
    TimeLast,
    TimeMax,
    TimeMean,
)
from snn.neurons import (
    ALIF,
    IF,
    ILIF,
    LI,
    LIF,
    NEURONS,
    CubaLIF,
    MultiLevelLIF,
    ParametricLIF,
    TernaryLIF,
    detach,
    reset,
    set_backend,
    set_step_mode,
)
from snn.surrogate import get_surrogate

__version__ = "0.1.0"

_LAZY = ("converters", "demo", "energy", "nir", "training", "viz")
"""Subpackages with heavier imports (torch.fx, matplotlib, nir, torch.distributed; energy
imports the converters), loaded on first attribute access: ``snn.nir.export(...)`` works
after a plain ``import snn``."""


_LAZY_ATTRIBUTES = {"checkpoint": "snn.training.memory", "memory_efficient": "snn.training.memory"}
"""Functions re-exported from lazily loaded subpackages."""


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRIBUTES:
        import importlib

        return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"snn.{name}")
    raise AttributeError(f"module 'snn' has no attribute {name!r}")


__all__ = [
    "ALIF",
    "IF",
    "ILIF",
    "LI",
    "LIF",
    "NEURONS",
    "BackendUnavailableError",
    "CubaLIF",
    "DeltaEncoder",
    "FiringRateRegularizer",
    "LatencyEncoder",
    "Monitor",
    "MultiLevelLIF",
    "ParametricLIF",
    "PoissonEncoder",
    "Recurrent",
    "RepeatEncoder",
    "SpikeCount",
    "SpikeRate",
    "TernaryLIF",
    "TimeDistributed",
    "TimeLast",
    "TimeMax",
    "TimeMean",
    "__version__",
    "available_backends",
    "converters",
    "datasets",
    "demo",
    "detach",
    "energy",
    "functional",
    "get_surrogate",
    "layers",
    "models",
    "neurons",
    "nir",
    "reset",
    "set_backend",
    "set_step_mode",
    "surrogate",
    "training",
    "viz",
]
