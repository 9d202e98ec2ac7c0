r"""Spiking LMUFormer: a convolutional patch embedding, spiking Legendre-memory token mixers
and convolutional channel mixers, on time-first sequences ``[T, B, features]``.

Reference:
    Z. Liu, G. Datta, A. Li, P. A. Beerel, "LMUFormer: Low Complexity Yet Powerful Spiking
    Model With Legendre Memory Units", ICLR 2024 (arXiv:2402.04882).

The sequence axis is time: a Speech Commands clip of 128 log-mel frames of 128 bins is the
input ``[128, B, 128]``, one frame per step, and the model returns per-step logits
``[T, B, classes]`` whose mean over time classifies the clip (the authors' head averages the
logits over the sequence).

Layout (the paper's Fig. 1 and its "spiking LMUFormer", which the authors' released code
builds as ``slmu_rnn_ms_conv1d``, the model of its Speech Commands configuration ``gsc.yml``):

- patch embedding (:class:`ConvPatchEmbedding`): ``Conv(k=3) + BN``, then three times
  ``SN, Conv(k=3) + BN`` (the last without its norm), and a relative position embedding
  added to it, ``x + Conv(k=3)(SN(BN(x)))``; no biases; the output is a membrane;
- blocks (:class:`LMUFormerBlock`), each with two membrane shortcuts:
  ``x = x + BN(W_o h)`` with ``h = SpikingLMU(SN_0.5(BN(x)))`` (the token mixer,
  :class:`LMUMixer`), then ``x = x + W_2 SN(BN(W_1 SN(BN(x))))`` (the channel mixer,
  :class:`ChannelMixer`, width ``mlp_ratio * dim``);
- head: ``BN``, a neuron and a linear classifier per step.

Readings taken (from the released configuration where the paper gives no number):

- Sizes: width 256, one block, channel-mixer ratio 4, a Legendre memory of order
  ``2 * dim = 512`` over a window :math:`\theta = 128` steps (the clip's length), input of 128
  bins, 35 classes. With these the model has 1,689,894 parameters, the 1.69M of the paper's
  Speech Commands table (tested).
- The spiking LMU is :class:`snn.layers.SpikingLMU`: scalar :math:`u = SN(BN(W_u x))`, the
  memory spiked after a batch norm, :math:`h = SN(BN(W_h [m; x]))` (see its readings); its
  input neuron has threshold 0.5, as in the released code.
- Neurons: LIF with :math:`\tau = 2` (``beta=0.5``, input scaled by :math:`1 - \beta`), hard
  reset to 0, reset detached (:data:`snn.layers.attention.LIF_DEFAULTS`), threshold 1 unless
  stated.
- The 1x1 convolutions of the token and channel mixers are :class:`torch.nn.Linear` layers
  over the features (the same map and parameters). Batch norms see every step and sample.
- The kernel-3 convolutions are centred (padding 1), so the embedding looks ahead: up to 5
  frames through its five convolutions, the delay the paper analyses. The model therefore
  runs on whole sequences (sequence mode) only.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from snn.layers.attention import LIF_DEFAULTS, TokenBatchNorm, make_neuron
from snn.layers.lmu import SpikingLMU

__all__ = [
    "ChannelMixer",
    "ConvPatchEmbedding",
    "LMUFormer",
    "LMUFormerBlock",
    "LMUMixer",
    "SequenceConv1d",
    "lmuformer_speech_commands",
]


def _check_sequence(name: str, x: Tensor, features: int) -> None:
    if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != features:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a sequence [T, B, {features}], got {got}")


class SequenceConv1d(nn.Module):
    """A 1-d convolution over the time axis of ``[T, B, C_in]`` -> ``[T, B, C_out]`` (centred:
    ``padding = kernel_size // 2``, no bias)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                              bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x.permute(1, 2, 0)).permute(2, 0, 1)


class ConvPatchEmbedding(nn.Module):
    """LMUFormer's convolutional patch embedding (module docstring): ``[T, B, in_features]``
    -> membrane ``[T, B, dim]``."""

    def __init__(self, in_features: int, dim: int, kernel_size: int = 3):
        super().__init__()
        self.in_features = int(in_features)
        self.conv0 = SequenceConv1d(in_features, dim, kernel_size)
        self.norm0 = TokenBatchNorm(dim)
        self.neuron0 = make_neuron()
        self.conv1 = SequenceConv1d(dim, dim, kernel_size)
        self.norm1 = TokenBatchNorm(dim)
        self.neuron1 = make_neuron()
        self.conv2 = SequenceConv1d(dim, dim, kernel_size)
        self.norm2 = TokenBatchNorm(dim)
        self.neuron2 = make_neuron()
        self.conv3 = SequenceConv1d(dim, dim, kernel_size)
        self.rpe_norm = TokenBatchNorm(dim)
        self.rpe_neuron = make_neuron()
        self.rpe_conv = SequenceConv1d(dim, dim, kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        _check_sequence("ConvPatchEmbedding", x, self.in_features)
        x = self.conv1(self.neuron0(self.norm0(self.conv0(x))))
        x = self.conv2(self.neuron1(self.norm1(x)))
        x = self.conv3(self.neuron2(self.norm2(x)))
        return x + self.rpe_conv(self.rpe_neuron(self.rpe_norm(x)))


class LMUMixer(nn.Module):
    r"""The token mixer: ``BN(W_o h)`` with :math:`h` the spikes of a
    :class:`~snn.layers.SpikingLMU` fed :math:`SN_{0.5}(BN(x))`; the block adds the shortcut.

    Args:
        dim: features.
        order: order of the Legendre memory (LMUFormer: ``2 * dim``).
        theta: its window in steps.
    """

    def __init__(self, dim: int, order: int, theta: float):
        super().__init__()
        self.norm = TokenBatchNorm(dim)
        self.neuron = make_neuron(threshold=0.5)
        self.lmu = SpikingLMU(dim, dim, order=order, theta=theta,
                              neuron_kwargs=dict(LIF_DEFAULTS))
        self.proj = nn.Linear(dim, dim)
        self.proj_norm = TokenBatchNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_norm(self.proj(self.lmu(self.neuron(self.norm(x)))))


class ChannelMixer(nn.Module):
    """The channel mixer ``W_2 SN(BN(W_1 SN(BN(x))))`` (1x1 convolutions with biases, hidden
    width ``hidden``); the block adds the shortcut."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm1 = TokenBatchNorm(dim)
        self.neuron1 = make_neuron()
        self.fc1 = nn.Linear(dim, hidden)
        self.norm2 = TokenBatchNorm(hidden)
        self.neuron2 = make_neuron()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.neuron2(self.norm2(self.fc1(self.neuron1(self.norm1(x))))))


class LMUFormerBlock(nn.Module):
    """``x + LMUMixer(x)``, then ``x + ChannelMixer(x)`` on membranes ``[T, B, dim]``."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, order: int | None = None,
                 theta: float = 128.0):
        super().__init__()
        self.token_mixer = LMUMixer(dim, 2 * dim if order is None else order, theta)
        self.channel_mixer = ChannelMixer(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.token_mixer(x)
        return x + self.channel_mixer(x)


class LMUFormer(nn.Module):
    """Spiking LMUFormer (Liu et al., ICLR 2024); layout and readings in the module docstring.

    Args:
        in_features: features per step (Speech Commands: 128 mel bins).
        num_classes: outputs per step.
        dim: model width.
        depth: number of blocks.
        mlp_ratio: channel-mixer width over ``dim``.
        order: order of each block's Legendre memory (default ``2 * dim``).
        theta: the memory's window in steps.

    Input ``[T, B, in_features]``, output per-step logits ``[T, B, num_classes]``.
    """

    def __init__(self, in_features: int = 128, num_classes: int = 35, dim: int = 256,
                 depth: int = 1, mlp_ratio: float = 4.0, order: int | None = None,
                 theta: float = 128.0):
        super().__init__()
        for name, value in (("in_features", in_features), ("num_classes", num_classes),
                            ("dim", dim), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LMUFormer: {name} must be a positive integer, got {value!r}")
        if order is not None and (isinstance(order, bool) or not isinstance(order, int)
                                  or order < 1):
            raise ValueError(f"LMUFormer: order must be a positive integer, got {order!r}")
        if not theta > 0:
            raise ValueError(f"LMUFormer: theta must be positive, got {theta!r}")
        self.in_features = in_features
        self.embed = ConvPatchEmbedding(in_features, dim)
        self.blocks = nn.Sequential(*[LMUFormerBlock(dim, mlp_ratio, order, theta)
                                      for _ in range(depth)])
        self.head_norm = TokenBatchNorm(dim)
        self.head_neuron = make_neuron()
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        _check_sequence("LMUFormer", x, self.in_features)
        x = self.blocks(self.embed(x))
        return self.head(self.head_neuron(self.head_norm(x)))


def lmuformer_speech_commands(**kwargs: Any) -> LMUFormer:
    """Spiking LMUFormer for Google Speech Commands V2 (35 classes, clips of 128 frames of 128
    log-mel bins): width 256, one block, memory of order 512 over 128 steps; 1,689,894
    parameters (the paper: 1.69M). Keyword arguments override the configuration."""
    config: dict[str, Any] = {"in_features": 128, "num_classes": 35, "dim": 256, "depth": 1,
                              "mlp_ratio": 4.0, "theta": 128.0}
    return LMUFormer(**{**config, **kwargs})
