"""RepConv, the re-parameterisable convolution of Meta-SpikeFormer (Yao et al., "Spike-driven
Transformer V2: Meta Spiking Neural Network Architecture Inspiring the Design of
Next-generation Neuromorphic Chips", ICLR 2024), and the padded batch norm it needs.

``Conv1x1 -> BN -> depthwise Conv3x3 -> Conv1x1 -> BN`` is a composition of affine maps, so it
folds into one 3x3 convolution for inference, provided the depthwise convolution's padding
carries the first batch norm's image of zero rather than zeros: :class:`BatchNormPad` pads with
that value (as the authors' ``BNAndPadLayer``), and the depthwise convolution is unpadded.
:meth:`RepConv.fused` returns that convolution and :func:`fuse_repconvs` swaps it in throughout a
model (tested: the outputs are unchanged in eval mode).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snn.layers.time import TimeDistributed

__all__ = ["BatchNormPad", "RepConv", "fuse_repconvs"]


class BatchNormPad(nn.BatchNorm2d):
    """Batch norm of ``[N, C, H, W]``, then a border of ``pad`` pixels filled with the norm's
    image of zero (``bias - running_mean * weight / sqrt(running_var + eps)``, from the running
    statistics, without gradient), so that a following unpadded convolution sees what a
    zero-padded convolution of the un-normalised input would (re-parameterisation).

    Input ``[N, C, H, W]``, output ``[N, C, H + 2 pad, W + 2 pad]``.
    """

    def __init__(self, num_features: int, pad: int = 1, **kwargs: Any):
        super().__init__(num_features, **kwargs)
        if pad < 0:
            raise ValueError(f"BatchNormPad: pad must be >= 0, got {pad}")
        self.pad = int(pad)

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        if self.pad == 0:
            return out
        with torch.no_grad():
            mean = self.running_mean if self.running_mean is not None else 0.0
            var = self.running_var if self.running_var is not None else 1.0
            shift = -mean / torch.sqrt(torch.as_tensor(var) + self.eps)
            if self.affine:
                shift = self.bias + shift * self.weight
            value = torch.as_tensor(shift, dtype=out.dtype, device=out.device)
            value = value.expand(self.num_features).view(1, -1, 1, 1)
        return F.pad(out - value, [self.pad] * 4) + value

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pad={self.pad}"


class RepConv(TimeDistributed):
    """Meta-SpikeFormer's RepConv on ``[T, B, C_in, H, W]``: ``Conv1x1``, :class:`BatchNormPad`,
    depthwise ``Conv3x3`` (unpadded), ``Conv1x1`` to ``C_out`` and batch norm; no biases. It
    re-parameterises into one 3x3 convolution for inference. Output ``[T, B, C_out, H, W]``."""

    def __init__(self, in_channels: int, out_channels: int):
        c = int(in_channels)
        super().__init__(
            nn.Conv2d(c, c, 1, bias=False), BatchNormPad(c, 1),
            nn.Conv2d(c, c, 3, groups=c, bias=False), nn.Conv2d(c, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def fused(self) -> nn.Conv2d:
        """The single ``Conv3x3`` (padding 1, with bias) this RepConv equals in eval mode (batch
        norms at their running statistics), for inference.

        Raises:
            ValueError: if a batch norm tracks no running statistics.
        """
        conv1, bn1, dw, conv2, bn2 = self
        for bn in (bn1, bn2):
            if bn.running_mean is None or bn.running_var is None:
                raise ValueError("RepConv.fused: the batch norms must track running statistics")

        def affine(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
            s = 1.0 / torch.sqrt(bn.running_var + bn.eps)
            t = -bn.running_mean * s
            if bn.affine:
                s, t = s * bn.weight, t * bn.weight + bn.bias
            return s, t

        with torch.no_grad():
            s1, t1 = affine(bn1)
            s2, t2 = affine(bn2)
            w1 = conv1.weight[:, :, 0, 0] * s1[:, None]  # [C, C_in]
            wd = dw.weight[:, 0]  # [C, 3, 3]
            w2 = conv2.weight[:, :, 0, 0] * s2[:, None]  # [C_out, C]
            kernel = torch.einsum("oc,chw,ci->oihw", w2, wd, w1)
            bias = w2 @ (t1 * wd.sum((1, 2))) + t2
            fused = nn.Conv2d(conv1.in_channels, conv2.out_channels, 3, padding=1,
                              device=kernel.device, dtype=kernel.dtype)
            fused.weight.copy_(kernel)
            fused.bias.copy_(bias)
        return fused


def fuse_repconvs(model: nn.Module) -> nn.Module:
    """Replace every :class:`RepConv` inside ``model`` (in place) by its :meth:`RepConv.fused`
    convolution, for inference: in eval mode the outputs are unchanged (up to rounding).

    Returns:
        ``model``.
    """
    for name, child in list(model.named_children()):
        if isinstance(child, RepConv):
            setattr(model, name, TimeDistributed(child.fused()))
        else:
            fuse_repconvs(child)
    return model
