"""One description per neuron: everything the fused kernels, the backend table and the kernel
tests need to know about it, declared once next to the neuron's reference step.

A neuron's reference is its step function in :mod:`snn.functional` (keyword parameters and
their defaults are read from the step's signature, so they are written once). Its
:class:`NeuronDescription` adds how the general fused neuron runs it:

.. math::
    i_t &= \\alpha\\, i_{t-1} + x_t \\quad(\\text{CuBa; otherwise } i_t = x_t) \\\\
    h_t &= \\beta\\, v_{t-1} + c\\, i_t, \\qquad
        c = 1-\\beta \\text{ with decay\\_input, else } 1 \\\\
    \\vartheta_t &= \\vartheta + \\gamma\\, a_{t-1} \\quad(\\text{ALIF; otherwise } \\vartheta) \\\\
    s_t &= \\operatorname{fire}(h_t, \\vartheta_t), \\qquad v_t = \\operatorname{reset}(h_t, s_t)
        \\\\
    a_t &= \\rho\\, a_{t-1} + (1-\\rho)\\, s_t \\quad(\\text{ALIF})

``integration`` picks the first three lines (:data:`KIND_LIF`, :data:`KIND_LI`,
:data:`KIND_CUBA`, :data:`KIND_ALIF`) and ``fire`` the spike rule (:data:`FIRE_BINARY`
:math:`\\Theta(h-\\vartheta)`, :data:`FIRE_MULTILEVEL` integer spikes
:math:`\\operatorname{round}(\\operatorname{clip}(h/\\vartheta, 0, D))`, :data:`FIRE_TERNARY`
:math:`\\Theta(h-\\vartheta) - \\Theta(-h-\\vartheta)`). The same codes are the enums of
``snn/cuda_kernels/neuron.cuh`` and the constants of :mod:`snn.cpu_kernels.loops`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DESCRIPTIONS",
    "FIRE_BINARY",
    "FIRE_MULTILEVEL",
    "FIRE_TERNARY",
    "KIND_ALIF",
    "KIND_CUBA",
    "KIND_LI",
    "KIND_LIF",
    "RESET_CODES",
    "NeuronDescription",
    "describe",
    "get_description",
]

KIND_LIF, KIND_LI, KIND_CUBA, KIND_ALIF = 0, 1, 2, 3
"""Integration codes (IF runs as LIF with unit decay)."""

FIRE_BINARY, FIRE_MULTILEVEL, FIRE_TERNARY = 0, 1, 2
"""Spike-rule codes."""

RESET_CODES = {"subtract": 0, "hard": 1, "none": 2}
"""Reset mode codes."""

REQUIRED = inspect.Parameter.empty
"""Marks a keyword parameter without a default in :attr:`NeuronDescription.params`."""


@dataclass(frozen=True)
class NeuronDescription:
    """How one neuron runs, declared once.

    Attributes:
        name: key of the neuron in :data:`DESCRIPTIONS` and in the backend table (the
            ``kind`` of its module).
        step: the reference step function ``step(x, state, **params) -> (out, state)``;
            its keyword-only parameters and defaults are the neuron's parameters.
        state: the state ``NamedTuple`` class; its fields (a subset of ``v``, ``i``, ``a``)
            name the state tensors.
        integration: ``KIND_*`` code of the fused update, or ``None`` for a neuron without
            fused kernels (the reference runs everywhere).
        fire: ``FIRE_*`` code of the spike rule (ignored for :data:`KIND_LI`).
        unit_decay: the neuron has no ``beta``: it integrates without leak (IF).
        resets: the reset modes the neuron accepts.
        test_params: parameters for the kernel test cases (besides reset and surrogate).
        uses_surrogate: the spike rule's gradient comes from the ``surrogate`` parameter
            (the multi-level rule has its own straight-through estimator).
    """

    name: str
    step: Callable[..., Any]
    state: type
    integration: int | None = KIND_LIF
    fire: int = FIRE_BINARY
    unit_decay: bool = False
    resets: tuple[str, ...] = ("subtract", "hard", "none")
    test_params: dict[str, Any] = field(default_factory=dict)
    uses_surrogate: bool = True

    @property
    def params(self) -> dict[str, Any]:
        """Keyword parameters of the step with their defaults (:data:`REQUIRED` if none)."""
        sig = inspect.signature(self.step)
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    @property
    def state_fields(self) -> tuple[str, ...]:
        """Names of the state tensors."""
        return tuple(self.state._fields)  # type: ignore[attr-defined]

    @property
    def spiking(self) -> bool:
        """Whether the neuron fires (everything but the leaky integrator)."""
        return self.integration != KIND_LI

    @property
    def fused(self) -> bool:
        """Whether the fused kernels run this neuron."""
        return self.integration is not None

    @property
    def reference(self) -> str:
        """``"module:function"`` of the reference whole-sequence function."""
        name = self.step.__name__.removesuffix("_step") + "_sequence"
        return f"{self.step.__module__}:{name}"


DESCRIPTIONS: dict[str, NeuronDescription] = {}
"""Registry of neuron descriptions by name."""


def describe(description: NeuronDescription) -> NeuronDescription:
    """Add ``description`` to :data:`DESCRIPTIONS` and return it.

    Raises:
        ValueError: if the name is taken, a state field is unknown to the fused kernels, or
            a reset mode is unknown.
    """
    if description.name in DESCRIPTIONS:
        raise ValueError(f"neuron description {description.name!r} is already registered")
    if description.fused:
        unknown = sorted(set(description.state_fields) - {"v", "i", "a"})
        if unknown:
            raise ValueError(
                f"neuron {description.name!r}: the fused kernels keep state fields v, i, a; "
                f"got {unknown} (give integration=None to run it on the reference only)"
            )
    bad = sorted(set(description.resets) - set(RESET_CODES))
    if bad:
        raise ValueError(f"neuron {description.name!r}: unknown reset modes {bad}")
    DESCRIPTIONS[description.name] = description
    return description


def get_description(name: str) -> NeuronDescription:
    """The description of neuron ``name``.

    Raises:
        ValueError: for an unknown name.
    """
    import snn.functional  # noqa: F401  (registers the built-in descriptions)

    try:
        return DESCRIPTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown neuron kind {name!r}; expected one of {sorted(DESCRIPTIONS)}"
        ) from None
