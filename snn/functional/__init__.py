"""Pure step and sequence functions of every neuron (no ``nn.Module`` here).

Each neuron's update is written once, as a ``*_step`` function with its equations in the
docstring; the ``*_sequence`` functions run it over a time-first sequence ``[T, B, ...]`` and are
the reference every fused backend is tested against.
"""

from snn.functional._common import (
    RESET_MODES,
    SequenceOutput,
    decay_to_tau,
    run_sequence,
    spike_and_reset,
    tau_to_decay,
)
from snn.functional.alif import ALIFState, alif_sequence, alif_step
from snn.functional.cuba import CubaLIFState, cuba_lif_sequence, cuba_lif_step
from snn.functional.lif import (
    LIFState,
    if_sequence,
    if_step,
    li_sequence,
    li_step,
    lif_sequence,
    lif_step,
)
from snn.functional.multilevel import (
    ilif_sequence,
    ilif_step,
    multilevel_to_binary,
    ternary_lif_sequence,
    ternary_lif_step,
)

__all__ = [
    "RESET_MODES",
    "ALIFState",
    "CubaLIFState",
    "LIFState",
    "SequenceOutput",
    "alif_sequence",
    "alif_step",
    "cuba_lif_sequence",
    "cuba_lif_step",
    "decay_to_tau",
    "if_sequence",
    "if_step",
    "ilif_sequence",
    "ilif_step",
    "li_sequence",
    "li_step",
    "lif_sequence",
    "lif_step",
    "multilevel_to_binary",
    "run_sequence",
    "spike_and_reset",
    "tau_to_decay",
    "ternary_lif_sequence",
    "ternary_lif_step",
]
