r"""Conversion-aware training: the quantisation-clip-floor-shift (QCFS) activation.

Put :class:`QCFS` in place of ``ReLU`` while training the ANN. It quantises activations to
``levels`` steps of a trainable threshold :math:`\lambda`, which is exactly what an IF neuron
with threshold :math:`\lambda`, reset by subtraction and initial membrane potential
:math:`\varphi\lambda` can represent over ``levels`` time steps (Bu et al., ICLR 2022,
"Optimal ANN-SNN conversion for high-accuracy and ultra-low-latency spiking neural networks").
:func:`snn.converters.convert` turns every ``QCFS`` into such a neuron, so a network trained with
it converts near-losslessly at T = 4 to 16.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["QCFS", "qcfs"]


class _FloorSTE(torch.autograd.Function):
    """``floor`` in the forward pass, identity gradient (straight-through estimator)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad


def qcfs(x: Tensor, threshold: Tensor | float, levels: int, shift: float = 0.5) -> Tensor:
    r"""Quantisation-clip-floor-shift activation.

    .. math::
        y = \lambda\, \operatorname{clip}\!\left(\frac{1}{L}
            \left\lfloor \frac{x L}{\lambda} + \varphi \right\rfloor, 0, 1\right)

    with threshold :math:`\lambda`, ``levels`` :math:`L` and ``shift`` :math:`\varphi`. The
    floor passes gradients straight through, so both ``x`` and :math:`\lambda` are trained.

    Args:
        x: pre-activation, any shape.
        threshold: :math:`\lambda` (positive), a float or a tensor broadcastable to ``x``.
        levels: number of quantisation steps :math:`L` (positive integer).
        shift: :math:`\varphi` in ``[0, 1]``; 0.5 makes the expected conversion error zero.
    """
    return threshold * torch.clamp(_FloorSTE.apply(x * levels / threshold + shift) / levels, 0, 1)


class QCFS(nn.Module):
    r"""Drop-in ``ReLU`` replacement for conversion-aware training (see :func:`qcfs`).

    Args:
        levels: quantisation steps :math:`L`; train with the number of time steps you intend to
            run the SNN for (4 to 16; 8 is a good default).
        threshold: initial value of the trainable threshold :math:`\lambda` (positive).
        shift: :math:`\varphi`; the converted neuron starts at membrane :math:`\varphi\lambda`.

    Example:
        >>> net = nn.Sequential(nn.Linear(64, 128), QCFS(levels=8), nn.Linear(128, 10))
    """

    def __init__(self, levels: int = 8, threshold: float = 8.0, shift: float = 0.5):
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"QCFS levels must be a positive integer, got {levels!r}")
        if not (threshold > 0 and math.isfinite(threshold)):
            raise ValueError(f"QCFS threshold must be positive and finite, got {threshold}")
        if not 0.0 <= shift <= 1.0:
            raise ValueError(f"QCFS shift must lie in [0, 1], got {shift}")
        self.levels = levels
        self.shift = float(shift)
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))

    def forward(self, x: Tensor) -> Tensor:
        return qcfs(x, self.threshold, self.levels, self.shift)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, threshold={float(self.threshold):.4g}, shift={self.shift}"
