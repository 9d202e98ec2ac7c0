"""Registry of neuron modules by name, so tests and tools can iterate over every neuron."""

from __future__ import annotations

from snn.neurons.alif import ALIF
from snn.neurons.base import BaseNeuron
from snn.neurons.cuba import CubaLIF
from snn.neurons.lif import IF, LI, LIF, ParametricLIF
from snn.neurons.multilevel import MultiLevelLIF, TernaryLIF

__all__ = ["NEURONS", "create_neuron"]

NEURONS: dict[str, type[BaseNeuron]] = {
    "if": IF,
    "lif": LIF,
    "plif": ParametricLIF,
    "cuba_lif": CubaLIF,
    "alif": ALIF,
    "li": LI,
    "ilif": MultiLevelLIF,
    "ternary_lif": TernaryLIF,
}
"""Neuron module classes by name."""


def create_neuron(name: str, **kwargs) -> BaseNeuron:
    """Build a neuron module by registry name.

    Raises:
        ValueError: for an unknown name.
    """
    try:
        cls = NEURONS[name]
    except KeyError:
        raise ValueError(f"unknown neuron {name!r}; expected one of {sorted(NEURONS)}") from None
    return cls(**kwargs)
