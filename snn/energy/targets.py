"""Hardware target profiles: published energies per operation, each with its source.

A :class:`HardwareTarget` prices the counts of :class:`snn.energy.OpCounter`. Every number is a
:class:`Figure` that carries its value in joules, the publication it comes from, and its
*kind*:

- ``"measured"``: taken on fabricated silicon;
- ``"simulated"``: from circuit simulation of a design (e.g. pre-silicon SPICE);
- ``"estimated"``: an author's published rough per-operation estimate for a technology node;
- ``"derived"``: computed here from other figures (the derivation is in ``note``);
- ``"quoted"``: taken from a secondary source (a survey table) that cites the primary
  publication, whose conditions (voltage, workload, what the energy covers) could not be
  checked here; ``note`` says so.

Targets shipped (:data:`TARGETS`):

- ``cmos45_fp32`` and ``cmos45_int8``: 45 nm CMOS at 0.9 V, from M. Horowitz, "Computing's
  energy problem (and what we can do about it)", ISSCC 2014, pp. 10-14: 32-bit float add 0.9 pJ
  and multiply 3.7 pJ, 8-bit integer add 0.03 pJ and multiply 0.2 pJ, 64-bit cache access
  10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB), DRAM 1.3-2.6 nJ. The usual 4.6 pJ MAC and 0.9 pJ
  AC of SNN papers are the float32 multiply plus add, and the add alone.
- ``loihi``: Intel Loihi, M. Davies et al., "Loihi: a neuromorphic manycore processor with
  on-chip learning", IEEE Micro 38(1):82-99, 2018, Table 2 ("pre-silicon ... measurements"
  from SDF and SPICE simulations, hence ``"simulated"``): synaptic spike op (min) 23.6 pJ,
  neuron update 81 pJ active / 52 pJ inactive, within-tile spike 1.7 pJ, tile hop 3.0 pJ
  (east-west) / 4.0 pJ (north-south).
- ``truenorth``: IBM TrueNorth, P. A. Merolla et al., "A million spiking-neuron integrated
  circuit with a scalable communication network and interface", Science 345(6197):668-673,
  2014: 26 pJ per synaptic event, measured as the whole chip's energy (static included) divided
  by the synaptic events at one operating point (20 Hz mean rate, 128 active synapses per
  neuron, 0.775 V). Memory, neuron updates and routing are inside that figure.

- ``spinnaker2``: SpiNNaker 2 (22 nm FDSOI, an Arm Cortex-M4F per processing element with a
  MAC array, exp/log and random-number accelerators; S. Höppner et al., "The SpiNNaker 2
  processing element architecture for hybrid digital neuromorphic computing",
  arXiv:2103.08392, 2021). One figure only: 10 pJ per synaptic operation, as *quoted* by the
  survey table of J. Tang et al., Frontiers in Neuroscience 17 (2023), PMC10326429, Table 3
  ("Energy per SOp (pJ)", row "SpiNNaker2 (Höppner et al., 2021)"). Reading taken: one
  synaptic operation is one spike-driven accumulate, so the figure prices ``ac``. What could
  not be checked, because the reference material available to us holds the primary paper's
  abstract but not its tables: the supply voltage and clock (the chip scales its voltage and
  frequency with the spiking load), the workload, whether the figure was measured on silicon,
  and what it includes (core, SRAM, network-on-chip, static power). The survey itself warns
  that its SOp energies "vary in different applications" and are "only mentioned for
  high-level comparison". Hence the kind ``"quoted"``, and no ``included`` category: memory,
  neuron updates and spike traffic stay *unpriced* (listed in every report, never priced at
  zero). No per-MAC energy of the MAC array, per-neuron-update energy or idle/static power of
  SpiNNaker 2 could be read from a primary source, so ``mac``, ``neuron_update``,
  ``memory_access``, ``spike`` and ``hop`` are ``None`` (this model has no static-power term;
  a per-inference static share would need the chip's idle power and the inference time).
  A user who has the primary figures can load a fuller target with :func:`load_target`.

Omitted on purpose: SynSense Speck. Its published figures (Yao et al., Nature Communications
15:4464, 2024) are powers (0.42 mW processor resting power, 0.70 mW total in a demo), not
energies per operation. Users with figures they trust can load them with :func:`load_target`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CATEGORIES",
    "FIGURE_NAMES",
    "HOROWITZ_2014",
    "KINDS",
    "TARGETS",
    "Figure",
    "HardwareTarget",
    "get_target",
    "load_target",
]

KINDS = ("measured", "simulated", "estimated", "derived", "quoted")
"""How a figure was obtained (see the module docstring)."""

CATEGORIES = ("compute", "memory", "neuron", "communication")
"""Energy categories of a report."""

PJ = 1e-12

HOROWITZ = (
    "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, "
    "pp. 10-14, energy table for 45 nm at 0.9 V"
)
DAVIES = (
    "M. Davies et al., 'Loihi: a neuromorphic manycore processor with on-chip learning', "
    "IEEE Micro 38(1):82-99, 2018, Table 2 (pre-silicon SDF/SPICE simulations)"
)
HOPPNER_VIA_TANG = (
    "S. Höppner et al., 'The SpiNNaker 2 processing element architecture for hybrid digital "
    "neuromorphic computing', arXiv:2103.08392, 2021, as quoted by J. Tang et al., Frontiers "
    "in Neuroscience 17, 2023 (PMC10326429), Table 3, 'Energy per SOp (pJ)'"
)
MEROLLA = (
    "P. A. Merolla et al., 'A million spiking-neuron integrated circuit with a scalable "
    "communication network and interface', Science 345(6197):668-673, 2014"
)


@dataclass(frozen=True)
class Figure:
    """One published (or derived) energy per operation.

    Args:
        joules: energy per operation in joules.
        source: the publication (and table) it comes from.
        kind: one of :data:`KINDS`.
        note: what exactly the figure covers, or how it was derived.

    Raises:
        ValueError: for a negative or non-finite energy, an empty source, or an unknown kind.
    """

    joules: float
    source: str
    kind: str
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.joules, (int, float)) or not math.isfinite(self.joules):
            raise ValueError(f"energy must be a finite number of joules, got {self.joules!r}")
        if self.joules < 0:
            raise ValueError(f"energy must be >= 0 J, got {self.joules}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError("every figure needs its source (publication, table)")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def picojoules(self) -> float:
        """The energy in pJ."""
        return self.joules / PJ


FIGURE_NAMES = (
    "mac",
    "ac",
    "mult",
    "neuron_update",
    "neuron_update_inactive",
    "spike",
    "hop",
    "memory_access",
)
"""The priced operations of a target:

- ``mac``: multiply-accumulate (synaptic operation with a non-binary input, batch norm);
- ``ac``: accumulate (synaptic operation driven by a binary spike; also additions and
  comparisons of pooling and ReLU);
- ``mult``: a lone multiplication (not used by the built-in layer rules; for user rules);
- ``neuron_update``: one neuron state update (per neuron and time step; the *active* update
  when ``neuron_update_inactive`` is also given);
- ``neuron_update_inactive``: an update of a neuron that received no input at that step;
- ``spike``: emitting and delivering one spike message (local);
- ``hop``: each extra router hop of a spike (multiplied by the report's ``mean_hops``);
- ``memory_access``: one memory read or write of one operand (at most 64 bits).
"""


@dataclass(frozen=True)
class HardwareTarget:
    """Energies per operation of one hardware target.

    A missing figure (``None``) means the target publishes no such number: work of that type is
    listed as *unpriced* in a report, never silently priced at zero, unless ``included`` says
    which other figure already contains it.

    Args:
        name: registry name.
        description: one line naming the chip or technology.
        mac, ac, mult, neuron_update, neuron_update_inactive, spike, hop, memory_access: the
            :class:`Figure` of each operation (see :data:`FIGURE_NAMES`) or ``None``.
        included: ``{category: explanation}`` for the categories of :data:`CATEGORIES` whose
            energy is already inside another figure (e.g. memory inside Loihi's synaptic op).
        notes: anything else a user must know to read the numbers.
    """

    name: str
    description: str
    mac: Figure | None = None
    ac: Figure | None = None
    mult: Figure | None = None
    neuron_update: Figure | None = None
    neuron_update_inactive: Figure | None = None
    spike: Figure | None = None
    hop: Figure | None = None
    memory_access: Figure | None = None
    included: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("a hardware target needs a non-empty name")
        for name in FIGURE_NAMES:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Figure):
                raise TypeError(
                    f"target {self.name!r}: {name} must be a Figure or None, "
                    f"got {type(value).__name__}"
                )
        bad = [c for c in self.included if c not in CATEGORIES]
        if bad:
            raise ValueError(
                f"target {self.name!r}: unknown categories {bad} in 'included'; "
                f"expected some of {CATEGORIES}"
            )
        object.__setattr__(self, "included", dict(self.included))

    def __hash__(self) -> int:
        return hash((self.name, *(getattr(self, n) for n in FIGURE_NAMES)))

    def figures(self) -> dict[str, Figure]:
        """The figures this target gives, by operation name."""
        return {n: getattr(self, n) for n in FIGURE_NAMES if getattr(self, n) is not None}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (energies in pJ), the same layout :func:`load_target` reads."""
        return {
            "name": self.name,
            "description": self.description,
            "figures": {
                n: {"pj": f.picojoules, "source": f.source, "kind": f.kind, "note": f.note}
                for n, f in self.figures().items()
            },
            "included": dict(self.included),
            "notes": self.notes,
        }


def _fig(pj: float, source: str, kind: str, note: str = "") -> Figure:
    return Figure(pj * PJ, source, kind, note)


HOROWITZ_2014: dict[str, Figure] = {
    "fp32_add": _fig(0.9, HOROWITZ, "estimated", "32-bit floating-point add"),
    "fp32_mult": _fig(3.7, HOROWITZ, "estimated", "32-bit floating-point multiply"),
    "fp16_add": _fig(0.4, HOROWITZ, "estimated", "16-bit floating-point add"),
    "fp16_mult": _fig(1.1, HOROWITZ, "estimated", "16-bit floating-point multiply"),
    "int32_add": _fig(0.1, HOROWITZ, "estimated", "32-bit integer add"),
    "int32_mult": _fig(3.1, HOROWITZ, "estimated", "32-bit integer multiply"),
    "int8_add": _fig(0.03, HOROWITZ, "estimated", "8-bit integer add"),
    "int8_mult": _fig(0.2, HOROWITZ, "estimated", "8-bit integer multiply"),
    "sram_8kb": _fig(10.0, HOROWITZ, "estimated", "64-bit access of an 8 KB cache"),
    "sram_32kb": _fig(20.0, HOROWITZ, "estimated", "64-bit access of a 32 KB cache"),
    "sram_1mb": _fig(100.0, HOROWITZ, "estimated", "64-bit access of a 1 MB cache"),
    "dram_min": _fig(1300.0, HOROWITZ, "estimated", "64-bit DRAM access, low end (1.3 nJ)"),
    "dram_max": _fig(2600.0, HOROWITZ, "estimated", "64-bit DRAM access, high end (2.6 nJ)"),
}
"""Every Horowitz (ISSCC 2014) 45 nm figure the targets use, for building custom targets."""

_H = HOROWITZ_2014
_MEMORY_NOTE = (
    "each operand access (at most 64 bits) is priced as one 64-bit access of an 8 KB SRAM "
    "(Horowitz gives one energy per access, read or write alike); an upper bound for packed "
    "narrow operands"
)

CMOS45_FP32 = HardwareTarget(
    name="cmos45_fp32",
    description="45 nm CMOS, 0.9 V, 32-bit floating point (Horowitz, ISSCC 2014)",
    mac=_fig(
        4.6, HOROWITZ, "derived", "32-bit float multiply (3.7 pJ) plus add (0.9 pJ)"
    ),
    ac=_H["fp32_add"],
    mult=_H["fp32_mult"],
    neuron_update=_fig(
        4.6, HOROWITZ, "derived",
        "one 32-bit float multiply-accumulate per update (leak times state plus input); "
        "threshold comparison and reset not priced",
    ),
    memory_access=_fig(10.0, HOROWITZ, "estimated", _MEMORY_NOTE),
    included={
        "communication": "no spike network: spikes are written to and read from memory, "
        "priced as memory accesses",
    },
    notes="The 4.6 pJ MAC and 0.9 pJ AC are the figures most SNN papers use.",
)

CMOS45_INT8 = HardwareTarget(
    name="cmos45_int8",
    description="45 nm CMOS, 0.9 V, 8-bit integer (Horowitz, ISSCC 2014)",
    mac=_fig(0.23, HOROWITZ, "derived", "8-bit integer multiply (0.2 pJ) plus add (0.03 pJ)"),
    ac=_H["int8_add"],
    mult=_H["int8_mult"],
    neuron_update=_fig(
        0.23, HOROWITZ, "derived",
        "one 8-bit integer multiply-accumulate per update; threshold and reset not priced",
    ),
    memory_access=_fig(10.0, HOROWITZ, "estimated", _MEMORY_NOTE),
    included={
        "communication": "no spike network: spikes are written to and read from memory, "
        "priced as memory accesses",
    },
    notes="Accumulators wider than 8 bits cost more per add (32-bit integer add: 0.1 pJ).",
)

LOIHI = HardwareTarget(
    name="loihi",
    description="Intel Loihi, 14 nm (Davies et al., IEEE Micro 2018, Table 2)",
    ac=_fig(
        23.6, DAVIES, "simulated",
        "'Energy per synaptic spike op (min)': a minimum, covering the synaptic memory read "
        "and the dendritic accumulation",
    ),
    neuron_update=_fig(81.0, DAVIES, "simulated", "'Energy per neuron update (active)'"),
    neuron_update_inactive=_fig(
        52.0, DAVIES, "simulated", "'Energy per neuron update (inactive)'"
    ),
    spike=_fig(1.7, DAVIES, "simulated", "'Within-tile spike energy'"),
    hop=_fig(
        3.0, DAVIES, "simulated",
        "'Energy per tile hop (E-W)'; north-south hops cost 4.0 pJ",
    ),
    included={
        "memory": "synaptic memory reads are part of the synaptic op and neuron state "
        "accesses part of the neuron update (Davies 2018 publishes no separate memory figure)",
    },
    notes=(
        "Pre-silicon figures. Loihi has no multiply-accumulate for graded inputs: MACs are "
        "listed as unpriced. 'Active' here means the neuron received nonzero input at that "
        "step, a counting convention of this library."
    ),
)

TRUENORTH = HardwareTarget(
    name="truenorth",
    description="IBM TrueNorth, 28 nm (Merolla et al., Science 2014)",
    ac=_fig(
        26.0, MEROLLA, "measured",
        "energy per synaptic event: total chip energy (static included) over synaptic events at "
        "20 Hz mean firing, 128 active synapses per neuron, 0.775 V",
    ),
    included={
        "memory": "inside the 26 pJ per synaptic event (whole-chip measurement)",
        "neuron": "inside the 26 pJ per synaptic event (whole-chip measurement)",
        "communication": "inside the 26 pJ per synaptic event (whole-chip measurement)",
    },
    notes=(
        "An all-in operating-point average, not a per-term energy: it holds for workloads near "
        "that operating point. TrueNorth has binary spikes only: MACs are listed as unpriced."
    ),
)

SPINNAKER2 = HardwareTarget(
    name="spinnaker2",
    description="SpiNNaker 2, 22 nm FDSOI (Höppner et al., arXiv:2103.08392, 2021)",
    ac=_fig(
        10.0, HOPPNER_VIA_TANG, "quoted",
        "energy per synaptic operation as listed by a survey 'only for high-level comparison'; "
        "the primary paper's voltage, clock, workload and what the figure includes were not "
        "checked here",
    ),
    notes=(
        "Only the synaptic operation is priced: no published per-MAC (MAC array), "
        "per-neuron-update, memory, spike-routing or static energy of SpiNNaker 2 could be "
        "read from a primary source, so that work is listed as unpriced and totals are lower "
        "bounds. Whether memory or static power is inside the 10 pJ is not known."
    ),
)

TARGETS: dict[str, HardwareTarget] = {
    t.name: t for t in (CMOS45_FP32, CMOS45_INT8, LOIHI, TRUENORTH, SPINNAKER2)
}
"""Built-in hardware targets by name."""


def get_target(target: str | HardwareTarget) -> HardwareTarget:
    """A target by registry name (or the target itself).

    Raises:
        ValueError: for an unknown name (the message lists the known names).
        TypeError: for anything else than a name or a :class:`HardwareTarget`.
    """
    if isinstance(target, HardwareTarget):
        return target
    if not isinstance(target, str):
        raise TypeError(
            f"target must be a name or a HardwareTarget, got {type(target).__name__}"
        )
    try:
        return TARGETS[target]
    except KeyError:
        raise ValueError(
            f"unknown hardware target {target!r}; expected one of {sorted(TARGETS)} "
            "or a file loaded with snn.energy.load_target"
        ) from None


_TARGET_KEYS = {"name", "description", "figures", "included", "notes"}
_FIGURE_KEYS = {"pj", "source", "kind", "note"}


def load_target(path: str | os.PathLike[str]) -> HardwareTarget:
    """Load a user-defined target from a JSON (``.json``) or TOML (``.toml``) file.

    The layout is that of :meth:`HardwareTarget.to_dict`; energies are in picojoules and every
    figure needs a ``source`` and a ``kind``::

        name = "my_chip"
        description = "my accelerator, 22 nm"
        [figures.ac]
        pj = 1.5
        source = "our measurement, lab notebook 12"
        kind = "measured"
        [included]
        memory = "inside the synaptic op figure"

    Raises:
        ValueError: for an unknown extension, unparsable content, unknown or missing keys, or
            invalid figures; the message names the file and the key.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ValueError(f"{path}: target files must end in .json or .toml, got {suffix!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"{path}: cannot read the target file: {err}") from err
    try:
        if suffix == ".json":
            data = json.loads(text)
        else:
            try:
                import tomllib
            except ModuleNotFoundError:  # pragma: no cover - Python 3.10
                try:
                    import tomli as tomllib  # type: ignore[no-redef]
                except ModuleNotFoundError:
                    raise ImportError(
                        f"{path}: reading TOML needs Python >= 3.11 or the 'tomli' package; "
                        "use a .json target file instead"
                    ) from None
            data = tomllib.loads(text)
    except ValueError as err:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ValueError(f"{path}: cannot parse the target file: {err}") from err
    return _target_from_dict(data, str(path))


def _target_from_dict(data: Any, where: str) -> HardwareTarget:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a table/object at the top level")
    unknown = set(data) - _TARGET_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(_TARGET_KEYS)}")
    if "name" not in data:
        raise ValueError(f"{where}: missing 'name'")
    figures = data.get("figures", {})
    if not isinstance(figures, dict) or not figures:
        raise ValueError(f"{where}: 'figures' must be a non-empty table of operations")
    kwargs: dict[str, Any] = {}
    for op, spec in figures.items():
        if op not in FIGURE_NAMES:
            raise ValueError(f"{where}: unknown operation 'figures.{op}'; expected {FIGURE_NAMES}")
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: 'figures.{op}' must be a table with pj, source, kind")
        bad = set(spec) - _FIGURE_KEYS
        missing = {"pj", "source", "kind"} - set(spec)
        if bad or missing:
            raise ValueError(
                f"{where}: 'figures.{op}' has unknown keys {sorted(bad)} / misses {sorted(missing)}"
            )
        if isinstance(spec["pj"], bool) or not isinstance(spec["pj"], (int, float)):
            raise ValueError(f"{where}: 'figures.{op}.pj' must be a number, got {spec['pj']!r}")
        try:
            kwargs[op] = _fig(float(spec["pj"]), spec["source"], spec["kind"], spec.get("note", ""))
        except ValueError as err:
            raise ValueError(f"{where}: 'figures.{op}': {err}") from None
    try:
        return HardwareTarget(
            name=data["name"],
            description=str(data.get("description", "")),
            included=dict(data.get("included", {})),
            notes=str(data.get("notes", "")),
            **kwargs,
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None
