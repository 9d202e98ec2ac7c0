"""Recurrent SNNs for spiking audio (SHD/SSC) and the CuBa-LIF network of the NIR paper.

References:
    B. Cramer, Y. Stradmann, J. Schemmel, F. Zenke, "The Heidelberg Spiking Data Sets for the
    Systematic Evaluation of Spiking Neural Networks", IEEE TNNLS 2020 (recurrent LIF network
    with a leaky-integrator readout, max-over-time loss).
    A. Bittar, P. N. Garner, "A surrogate gradient spiking baseline for speech command
    recognition", Frontiers in Neuroscience 2022 (recurrent layers of adaptive neurons, SHD
    above 90%).
    J. E. Pedersen et al., "Neuromorphic intermediate representation: A unified instruction set
    for interoperable brain-inspired computing", Nature Communications 2024 (a recurrent
    CuBa-LIF network, 12 -> 38 recurrent -> 7, reading Braille from tactile events).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from snn.layers import TimeDistributed
from snn.layers.recurrent import Recurrent
from snn.neurons import LI, CubaLIF, create_neuron

__all__ = ["CubaRSNN", "RecurrentSNN", "nir_cuba_rsnn", "rsnn_shd", "rsnn_ssc"]


class RecurrentSNN(nn.Module):
    """Stacked recurrent spiking layers with a leaky-integrator readout.

    Input ``[T, B, in_features]`` (binned spike counts), output ``[T, B, num_classes]``: the
    membrane potential of the readout (classify by its maximum or mean over time).

    Args:
        in_features: input channels (700 for SHD/SSC).
        num_classes: 20 for SHD, 35 for SSC.
        hidden: sizes of the recurrent layers.
        neuron: neuron name (``"lif"``, or ``"alif"`` for adaptive layers).
        neuron_kwargs: options of the hidden neurons (default ``beta=0.95``).
        readout_beta: decay of the leaky-integrator readout.
        dropout: dropout between layers (applied per time step).
    """

    def __init__(
        self,
        in_features: int = 700,
        num_classes: int = 20,
        hidden: Sequence[int] = (256,),
        *,
        neuron: str = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
        readout_beta: float = 0.95,
        dropout: float = 0.0,
    ):
        super().__init__()
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden must list positive layer sizes, got {tuple(hidden)}")
        options = {"beta": 0.95, **(neuron_kwargs or {})}
        layers: list[nn.Module] = []
        size = in_features
        for h in hidden:
            layers.append(
                Recurrent(
                    create_neuron(neuron, **options),
                    nn.Linear(h, h, bias=False),
                    feedforward=nn.Linear(size, h),
                )
            )
            if dropout:
                layers.append(TimeDistributed(nn.Dropout(dropout)))
            size = h
        self.hidden = nn.Sequential(*layers)
        self.readout = TimeDistributed(nn.Linear(size, num_classes))
        self.integrator = LI(beta=readout_beta)

    def forward(self, x: Tensor) -> Tensor:
        """``[T, B, in_features] -> [T, B, num_classes]`` (readout membrane)."""
        if x.dim() != 3:
            raise ValueError(f"RecurrentSNN expects [T, B, channels], got {tuple(x.shape)}")
        return self.integrator(self.readout(self.hidden(x)))


class CubaRSNN(nn.Sequential):
    """The recurrent CuBa-LIF network of the NIR paper: linear -> recurrent CuBa-LIF layer ->
    linear -> CuBa-LIF output layer.

    Input ``[T, B, in_features]`` spikes, output ``[T, B, num_classes]`` output spikes (classify
    by spike count). A plain ``nn.Sequential`` (children ``lif1``, ``fc2``, ``lif2``), so it
    traces and exports to NIR as it is (:func:`snn.nir.export`).

    Args:
        in_features: input channels (12 taxels in the Braille task).
        hidden: recurrent CuBa-LIF neurons (38 in the paper's reset-to-zero graph, 55 with
            reset by subtraction).
        num_classes: output neurons (7 letters).
        alpha: synaptic current decay per step.
        beta: membrane decay per step.
        reset: ``"hard"`` (to zero) or ``"subtract"``.
        neuron_kwargs: further options of :class:`snn.CubaLIF`.
    """

    def __init__(
        self,
        in_features: int = 12,
        hidden: int = 38,
        num_classes: int = 7,
        *,
        alpha: float = 0.9,
        beta: float = 0.9,
        reset: str = "hard",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        options = {"alpha": alpha, "beta": beta, "reset": reset, **(neuron_kwargs or {})}
        super().__init__(
            OrderedDict(
                lif1=Recurrent(
                    CubaLIF(**options),
                    nn.Linear(hidden, hidden, bias=False),
                    feedforward=nn.Linear(in_features, hidden),
                ),
                fc2=TimeDistributed(nn.Linear(hidden, num_classes)),
                lif2=CubaLIF(**options),
            )
        )


def rsnn_shd(**kwargs: Any) -> RecurrentSNN:
    """Recurrent LIF network for the Spiking Heidelberg Digits: 700 -> 256 (recurrent) -> 20."""
    return RecurrentSNN(**{"in_features": 700, "num_classes": 20, "hidden": (256,), **kwargs})


def rsnn_ssc(**kwargs: Any) -> RecurrentSNN:
    """Recurrent LIF network for the Spiking Speech Commands: 700 -> 2 x 256 -> 35."""
    return RecurrentSNN(**{"in_features": 700, "num_classes": 35, "hidden": (256, 256), **kwargs})


def nir_cuba_rsnn(**kwargs: Any) -> CubaRSNN:
    """The NIR paper's Braille network: 12 -> 38 recurrent CuBa-LIF -> 7 CuBa-LIF."""
    return CubaRSNN(**kwargs)
