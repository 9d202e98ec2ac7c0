"""The converted network: a traced graph of IF neurons, input encoding and a readout."""

from __future__ import annotations

from types import MappingProxyType

import torch
from torch import Tensor, fx, nn

from snn.converters.modules import IFActivation, SpikingMaxPool
from snn.layers.encoders import PoissonEncoder
from snn.layers.time import fold_time, unfold_time
from snn.neurons.lif import LI
from snn.neurons.utils import reset

__all__ = ["ENCODINGS", "ConvertedSNN"]

ENCODINGS = ("direct", "poisson")
"""``direct``: the analog input is the first layer's input current at every step (default);
``poisson``: intensities in ``[0, 1]`` become Bernoulli spike trains (one draw per step)."""


def _check_steps(steps: object, what: str = "steps") -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{what} must be a positive integer, got {steps!r}")
    return steps


class ConvertedSNN(nn.Module):
    """A spiking network converted from an ANN by :func:`snn.converters.convert`.

    ``graph`` is the ANN's traced graph with every activation replaced by an
    :class:`IFActivation` and every max pooling by a :class:`SpikingMaxPool`; it runs on time
    folded into the batch. The output layer's values at each step feed a non-leaky integrator
    (:class:`snn.LI` with ``beta=1``, the readout) whose membrane potential, divided by the
    number of steps, is the network's output: the mean output current, in the ANN's logit
    units.

    Args:
        graph: the converted graph, called as ``graph(x, steps)`` (``steps=None``: analog).
        steps: default number of time steps of :meth:`forward`.
        encoding: one of :data:`ENCODINGS`.
        time_chunk: steps simulated per call of the graph (memory grows with it); the state
            carries over between chunks, so results do not depend on it.
        generator: random generator of the Poisson encoder.

    Example:
        >>> snn_model, report = convert(ann, calibration_images)
        >>> logits = snn_model(images, steps=16)           # [B, classes]
        >>> per_step = snn_model.simulate(images, 64)      # [64, B, classes], readout at each T

    For :class:`snn.energy.OpCounter`, the readout's division of the membrane by the steps run
    (and the step index it divides by) is declared in ``folded_functions``: like the readouts
    of :mod:`snn.layers`, it is outside the network and not priced.
    """

    folded_functions = MappingProxyType({
        "arange": "step index of the readout (bookkeeping)",
        "div": "readout: the integrator's membrane over the steps run, outside the network "
        "(not priced, like the readouts of snn.layers)",
    })

    def __init__(
        self,
        graph: fx.GraphModule,
        *,
        steps: int = 32,
        encoding: str = "direct",
        time_chunk: int = 8,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.graph = graph
        self.readout = LI(beta=1.0)
        self.steps = _check_steps(steps)
        self.time_chunk = _check_steps(time_chunk, "time_chunk")
        self.encoding = encoding
        self.generator = generator

    def neurons(self) -> dict[str, IFActivation]:
        """The IF layers by their name in :attr:`graph` (the ANN's module names where the
        activation was a module), in registration order."""
        return {n: m for n, m in self.graph.named_modules() if isinstance(m, IFActivation)}

    def max_pools(self) -> dict[str, SpikingMaxPool]:
        """The spiking max-pooling layers by their name in :attr:`graph`."""
        return {n: m for n, m in self.graph.named_modules() if isinstance(m, SpikingMaxPool)}

    def analog(self, x: Tensor) -> Tensor:
        """The normalised ANN the SNN approximates: every neuron replaced by its analog
        activation (ReLU clipped at the threshold, or the QCFS quantiser)."""
        return self.graph(x, None)

    def _encode(self, x: Tensor, n: int) -> Tensor:
        if self.encoding == "poisson":
            return PoissonEncoder(n, generator=self.generator)(x)
        return x.unsqueeze(0).expand(n, *x.shape)

    def simulate(self, x: Tensor, steps: int | None = None) -> Tensor:
        """Run ``steps`` time steps from rest on a static input ``x`` (``[B, ...]``).

        Returns:
            ``[steps, B, ...]``: at index ``t - 1`` the readout after ``t`` steps (the
            integrator's membrane divided by ``t``), so one run gives the output at every
            ``T <= steps``.
        """
        steps = self.steps if steps is None else _check_steps(steps)
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError("the input of a converted network must be a floating-point tensor")
        reset(self)
        outs = []
        done = 0
        while done < steps:
            n = min(self.time_chunk, steps - done)
            current = self.graph(fold_time(self._encode(x, n)), n)
            v = self.readout(unfold_time(current, n))
            t = torch.arange(done + 1, done + n + 1, device=v.device, dtype=v.dtype)
            outs.append(v / t.view(-1, *([1] * (v.dim() - 1))))
            done += n
        return torch.cat(outs, 0)

    def forward(self, x: Tensor, steps: int | None = None) -> Tensor:
        """The readout after ``steps`` steps (default :attr:`steps`), ``[B, ...]``."""
        return self.simulate(x, steps)[-1]

    def extra_repr(self) -> str:
        return f"steps={self.steps}, encoding={self.encoding!r}, time_chunk={self.time_chunk}"
