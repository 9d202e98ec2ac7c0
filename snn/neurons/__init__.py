"""Neuron modules built on :mod:`snn.functional` (state, step modes, backends)."""

from snn.neurons.alif import ALIF
from snn.neurons.base import STEP_MODES, BaseNeuron, SpikingNeuron
from snn.neurons.cuba import CubaLIF
from snn.neurons.lif import IF, LI, LIF, ParametricLIF
from snn.neurons.multilevel import ILIF, MultiLevelLIF, TernaryLIF
from snn.neurons.recompute import CheckpointStateError
from snn.neurons.registry import NEURONS, create_neuron
from snn.neurons.utils import detach, neurons_of, reset, set_backend, set_step_mode

__all__ = [
    "ALIF",
    "IF",
    "ILIF",
    "LI",
    "LIF",
    "NEURONS",
    "STEP_MODES",
    "BaseNeuron",
    "CheckpointStateError",
    "CubaLIF",
    "MultiLevelLIF",
    "ParametricLIF",
    "SpikingNeuron",
    "TernaryLIF",
    "create_neuron",
    "detach",
    "neurons_of",
    "reset",
    "set_backend",
    "set_step_mode",
]
