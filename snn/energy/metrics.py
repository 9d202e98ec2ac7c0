"""NeuroBench-compatible metrics from operation counts.

Names and definitions follow NeuroBench (Yik et al., "The neurobench framework for
benchmarking neuromorphic computing algorithms and systems", Nature Communications 16, 2025)
where they overlap:

========================  ===========================================  =======================
key                       definition (per sample)                      NeuroBench name
========================  ===========================================  =======================
``effective_acs``         synaptic operations driven by binary inputs  ``Effective_ACs``
                          (values in {-1, 0, 1}): each nonzero input
                          times its fan-out through nonzero weights
``effective_macs``        the same for inputs that are not binary      ``Effective_MACs``
``dense``                 every input element times its fan-out        ``Dense`` (synaptic
                          through all weights, whatever its value      operations)
``activation_sparsity``   zero outputs / all outputs of spiking        ``ActivationSparsity``
                          neurons and ANN activations (all samples)
``footprint``             bytes of parameters and buffers              ``Footprint``
========================  ===========================================  =======================

Like NeuroBench, synaptic operations exclude biases, and pooling, batch norm and neuron
updates are not synaptic operations (they are counted separately by :class:`OpCounter`).
Differences: NeuroBench's activation sparsity also counts non-spiking activation modules it
recognises; here non-spiking neurons (readouts such as ``LI``) are left out. ``dense_macs``
(the layer-wise MAC count that includes padding taps) is not a NeuroBench metric and is
reported next to these as ``dense_macs``.
"""

from __future__ import annotations

from typing import Any

from snn.energy.counts import ModelCounts

__all__ = ["NEUROBENCH_NAMES", "neurobench_metrics"]

NEUROBENCH_NAMES = {
    "effective_acs": "Effective_ACs",
    "effective_macs": "Effective_MACs",
    "dense": "Dense",
    "activation_sparsity": "ActivationSparsity",
    "footprint": "Footprint",
}
"""This library's metric keys and the NeuroBench names they correspond to."""


def neurobench_metrics(counts: ModelCounts) -> dict[str, Any]:
    """Per-sample metrics with NeuroBench's definitions (see the module docstring).

    Returns:
        ``effective_acs``, ``effective_macs``, ``dense``, ``dense_macs`` (per sample),
        ``activation_sparsity`` (``None`` without activations), ``footprint`` (bytes), and
        ``synaptic_operations``: the same three counts under NeuroBench's own keys.
    """
    n = counts.samples
    acs = counts.total("acs") / n
    macs = counts.total("macs") / n
    dense = counts.total("dense_synops") / n
    return {
        "effective_acs": acs,
        "effective_macs": macs,
        "dense": dense,
        "dense_macs": counts.total("dense_macs") / n,
        "activation_sparsity": counts.activation_sparsity,
        "footprint": counts.footprint_bytes,
        "synaptic_operations": {"Effective_MACs": macs, "Effective_ACs": acs, "Dense": dense},
    }
