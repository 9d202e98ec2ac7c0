r"""Meta-SpikeFormer (Spike-driven Transformer V2) and the Spike-driven Transformer's CIFAR
configurations.

References:
    M. Yao, J. Hu, T. Hu, Y. Xu, Z. Zhou, Y. Tian, B. Xu, G. Li, "Spike-driven Transformer
    V2: Meta Spiking Neural Network Architecture Inspiring the Design of Next-generation
    Neuromorphic Chips", ICLR 2024 (arXiv:2404.03663).
    M. Yao, J. Hu, Z. Zhou, L. Yuan, Y. Tian, B. Xu, G. Li, "Spike-driven Transformer",
    NeurIPS 2023 (arXiv:2307.01694).

Meta-SpikeFormer has four stages: two of Conv-based SNN blocks (:class:`MetaConvBlock`: a
SepConv token mixer and a channel-conv MLP, each with a membrane shortcut) and two of
Transformer-based SNN blocks (:class:`MetaTransformerBlock`: the spike-driven self-attention
SDSA-3, :class:`MetaSDSA`, with RepConv projections, and a channel MLP). The structure, the
widths and the layers' biases follow the authors' released code (``classification/models.py``
of BICLab/Spike-Driven-Transformer-V2, its ``Spiking_vit_MetaFormer``):

- stem ``Conv7x7/2 + BN`` to ``C1/2`` (no neuron before it: it takes the image), one conv block;
- ``SN, Conv3x3/2 + BN`` to ``C1``, one conv block;
- ``SN, Conv3x3/2 + BN`` to ``C2``, two conv blocks;
- ``SN, Conv3x3/2 + BN`` to ``C3``, six transformer blocks;
- ``SN, Conv3x3/1 + BN`` to ``C4``, two transformer blocks;
- head: the spatial mean, a neuron and a linear classifier.

The downsampling convolutions carry a bias (the authors' ``nn.Conv2d`` default), all other
convolutions do not; the MLPs' 1x1 convolutions do. With these the parameter counts equal the
paper's table: 15.1M, 31.3M and 55.4M for the widths ``(64, 128, 256, 360)``, ``(96, 192, 384,
480)`` and ``(128, 256, 512, 640)`` (tested). The released code builds the last two (its
``metaspikformer_8_384`` and ``_8_512``); the widths of the 15.1M model are not in it: they are
taken from a derived copy of the authors' file that adds ``metaspikformer_8_256`` ("15M
parameters"; JimmyZou/SpikeVideoFormer), and they give the table's count exactly.

Readings taken where the paper leaves a detail open:

- Neurons: binary LIF neurons (:math:`\tau = 2`, hard reset to 0, reset detached), as in the
  released code; the attention neuron has threshold 0.5 and the product is scaled by
  :math:`s = 0.125` before it, as there (a scale before this linear-input, hard-reset neuron is
  a threshold divided by it: :math:`SN(s\,x)` with threshold 0.5 equals :math:`SN(x)` with
  threshold 4, which is how a chip would run it).
- RepConv pads the output of its first batch norm with that norm's image of zero computed from
  the running statistics (the authors' ``BNAndPadLayer``), so that the block re-parameterises
  into a single 3x3 convolution; :class:`~snn.layers.repconv.BatchNormPad` does the same, and
  :func:`~snn.layers.repconv.fuse_repconvs` folds a trained model's RepConvs for inference
  (and for its energy estimate).
- Time: the model takes a time-first sequence ``[T, B, C, H, W]`` and returns per-step logits
  ``[T, B, classes]``; the authors' head averages them over time, which the readout does here.
- Of the paper's SDSA variants, SDSA-3 (the released models') is built by default and
  SDSA-1 (Spike-driven Transformer V1's mask and column sum) is available as
  ``attention="sdsa1"`` for the paper's ablation; the other two variants of its ablation table
  are not implemented.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from snn.layers.attention import (
    HadamardSum,
    NeuronFactory,
    SpikeMask,
    SpikeQKV,
    make_neuron,
)
from snn.layers.repconv import RepConv
from snn.layers.time import TimeDistributed
from snn.models.spiking_transformers import SpikeDrivenMLP, SpikeDrivenTransformer
from snn.neurons.lif import LIF

__all__ = [
    "MetaConvBlock",
    "MetaSDSA",
    "MetaSpikeFormer",
    "MetaTransformerBlock",
    "SepConv",
    "meta_spikeformer_imagenet",
    "sdt_cifar10",
    "sdt_cifar100",
]


def _conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
             bias: bool = False) -> TimeDistributed:
    return TimeDistributed(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=bias),
        nn.BatchNorm2d(c_out),
    )


class SepConv(nn.Module):
    """The inverted separable convolution token mixer (MobileNetV2's, spiking), on
    ``[T, B, C, H, W]`` membranes: ``SN``, ``Conv1x1`` to ``2C`` + BN, ``SN``, depthwise
    ``Conv7x7``, ``Conv1x1`` to ``C`` + BN (no biases). The shortcut is added by the block."""

    def __init__(self, dim: int, expansion: int = 2, kernel_size: int = 7,
                 neuron: NeuronFactory = LIF, neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        hidden = int(expansion * dim)
        self.neuron1 = make_neuron(neuron, neuron_kwargs)
        self.pwconv1 = _conv_bn(dim, hidden)
        self.neuron2 = make_neuron(neuron, neuron_kwargs)
        self.dwconv = TimeDistributed(
            nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden,
                      bias=False),
            nn.Conv2d(hidden, dim, 1, bias=False), nn.BatchNorm2d(dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.dwconv(self.neuron2(self.pwconv1(self.neuron1(x))))


class MetaConvBlock(nn.Module):
    """Conv-based SNN block on membranes ``[T, B, C, H, W]``: ``x = x + SepConv(x)``, then the
    channel conv ``x + BN(Conv3x3(SN(BN(Conv3x3(SN(x))))))`` widening to ``mlp_ratio * C``."""

    def __init__(self, dim: int, mlp_ratio: int = 4, neuron: NeuronFactory = LIF,
                 neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        n = {"neuron": neuron, "neuron_kwargs": neuron_kwargs}
        hidden = int(mlp_ratio * dim)
        self.sepconv = SepConv(dim, **n)
        self.neuron1 = make_neuron(**n)
        self.conv1 = _conv_bn(dim, hidden, 3)
        self.neuron2 = make_neuron(**n)
        self.conv2 = _conv_bn(hidden, dim, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.sepconv(x)
        return x + self.conv2(self.neuron2(self.conv1(self.neuron1(x))))


def _heads(x: Tensor, heads: int) -> Tensor:
    """``[T, B, C, H, W]`` -> ``[T, B, heads, H*W, C / heads]``."""
    t, b, c = x.shape[:3]
    return x.reshape(t, b, heads, c // heads, -1).transpose(-2, -1)


def _image(x: Tensor, like: Tensor) -> Tensor:
    """``[T, B, heads, H*W, d]`` -> the shape of ``like`` ``[T, B, heads * d, H, W]``."""
    return x.transpose(-2, -1).reshape(like.shape)


class MetaSDSA(nn.Module):
    r"""Meta-SpikeFormer's spike-driven self-attention on feature maps ``[T, B, C, H, W]``.

    .. math::
        U = SN(X), \quad Q = SN(\mathrm{RepConv}_Q(U)), \; K = \dots, \; V = \dots \\
        \text{SDSA-3}: \; SN_{0.5}\big(s\, Q (K^\top V)\big), \qquad
        \text{SDSA-1}: \; Q \otimes SN_{0.5}(\mathrm{SUM}_c(K \otimes V))

    per head over the ``H*W`` tokens, followed by :math:`\mathrm{RepConv}_O` (the output is a
    membrane; the block adds the shortcut). Each RepConv is followed by one more batch norm, as
    in the authors' code (``nn.Sequential(RepConv(dim, dim), nn.BatchNorm2d(dim))``).

    Args:
        dim: channels ``C``; num_heads: heads (``C`` must be a multiple).
        attention: ``"sdsa3"`` (the released models') or ``"sdsa1"`` (V1's).
        scale: :math:`s` of SDSA-3.
        attn_threshold: threshold of the attention neuron.
        neuron, neuron_kwargs: the neuron factory and its options.
    """

    ATTENTIONS = ("sdsa3", "sdsa1")

    def __init__(self, dim: int, num_heads: int = 8, attention: str = "sdsa3",
                 scale: float = 0.125, attn_threshold: float = 0.5, neuron: NeuronFactory = LIF,
                 neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"MetaSDSA: dim {dim} must be a positive multiple of num_heads "
                             f"{num_heads}")
        if attention not in self.ATTENTIONS:
            raise ValueError(f"MetaSDSA: attention must be one of {self.ATTENTIONS}, "
                             f"got {attention!r}")
        self.dim, self.num_heads, self.attention = int(dim), int(num_heads), attention
        n = {"neuron": neuron, "neuron_kwargs": neuron_kwargs}
        self.pre = make_neuron(**n)
        self.q = nn.Sequential(RepConv(dim, dim), TimeDistributed(nn.BatchNorm2d(dim)))
        self.q_neuron = make_neuron(**n)
        self.k = nn.Sequential(RepConv(dim, dim), TimeDistributed(nn.BatchNorm2d(dim)))
        self.k_neuron = make_neuron(**n)
        self.v = nn.Sequential(RepConv(dim, dim), TimeDistributed(nn.BatchNorm2d(dim)))
        self.v_neuron = make_neuron(**n)
        if attention == "sdsa3":
            self.qkv = SpikeQKV(scale)
        else:
            self.column_sum = HadamardSum(dim=-2)
            self.mask = SpikeMask()
        self.attn_neuron = make_neuron(**n, threshold=attn_threshold)
        self.proj = nn.Sequential(RepConv(dim, dim), TimeDistributed(nn.BatchNorm2d(dim)))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or x.shape[2] != self.dim:
            raise ValueError(f"MetaSDSA: expected [T, B, {self.dim}, H, W], got {tuple(x.shape)}")
        h = self.num_heads
        s = self.pre(x)
        q = _heads(self.q_neuron(self.q(s)), h)
        k = _heads(self.k_neuron(self.k(s)), h)
        v = _heads(self.v_neuron(self.v(s)), h)
        if self.attention == "sdsa3":
            out = self.attn_neuron(_image(self.qkv(q, k, v), x))
        else:
            out = _image(self.mask(self.attn_neuron(self.column_sum(k, v)), q), x)
        return self.proj(out)


class MetaTransformerBlock(nn.Module):
    """Transformer-based SNN block on membranes ``[T, B, C, H, W]``: ``x = x + SDSA(x)``, then
    the channel MLP ``x + BN(W_2 SN(BN(W_1 SN(x))))`` over tokens (1x1 convolutions with bias,
    width ``mlp_ratio * C``)."""

    def __init__(self, dim: int, num_heads: int = 8, mlp_ratio: float = 4.0,
                 attention: str = "sdsa3", neuron: NeuronFactory = LIF,
                 neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        n = {"neuron": neuron, "neuron_kwargs": neuron_kwargs}
        self.attn = MetaSDSA(dim, num_heads, attention, **n)
        self.mlp = SpikeDrivenMLP(dim, int(dim * mlp_ratio), **n)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        tokens = self.mlp(x.flatten(3).transpose(2, 3))  # residual inside
        return tokens.transpose(2, 3).reshape(x.shape)


class _Downsample(nn.Module):
    """``[SN], Conv(kernel, stride) + BN`` with a bias in the convolution (the authors')."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, first: bool,
                 neuron: NeuronFactory, neuron_kwargs: dict[str, Any] | None):
        super().__init__()
        self.neuron = nn.Identity() if first else make_neuron(neuron, neuron_kwargs)
        self.conv = _conv_bn(c_in, c_out, kernel, stride, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.neuron(x))


class MetaSpikeFormer(nn.Module):
    """Meta-SpikeFormer (Yao et al., ICLR 2024); see the module docstring for the layout.

    Args:
        in_channels: image channels.
        num_classes: outputs.
        widths: ``(C1, C2, C3, C4)``, the widths of the second conv stage, the third, and the
            two transformer stages (the authors' ``embed_dim`` list); the stem and the first
            conv stage are ``C1 / 2`` wide.
        num_heads: attention heads of both transformer stages.
        conv_depths: conv blocks after the stem, after the first and after the second
            downsampling (the paper: ``(1, 1, 2)``).
        depths: transformer blocks of the two transformer stages (the paper: ``(6, 2)``).
        mlp_ratio: hidden width of the channel convs and MLPs over their input.
        attention: ``"sdsa3"`` (the paper's models) or ``"sdsa1"`` (see :class:`MetaSDSA`).
        neuron, neuron_kwargs: neuron factory and options.

    Input ``[T, B, C, H, W]`` (H and W multiples of 16), output ``[T, B, num_classes]``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000,
                 widths: Sequence[int] = (64, 128, 256, 360), num_heads: int = 8,
                 conv_depths: Sequence[int] = (1, 1, 2),
                 depths: Sequence[int] = (6, 2), mlp_ratio: int = 4, attention: str = "sdsa3",
                 neuron: NeuronFactory = LIF, neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        if len(widths) != 4 or widths[0] % 2 or any(w < 1 for w in widths):
            raise ValueError("MetaSpikeFormer: widths takes 4 positive values, the first even, "
                             f"got {tuple(widths)}")
        if len(conv_depths) != 3 or len(depths) != 2:
            raise ValueError("MetaSpikeFormer: conv_depths takes 3 values and depths 2, got "
                             f"{tuple(conv_depths)} and {tuple(depths)}")
        n = {"neuron": neuron, "neuron_kwargs": neuron_kwargs}
        self.in_channels = int(in_channels)
        widths = (widths[0] // 2, *(int(w) for w in widths))
        # (input width, output width, kernel, stride) of the five downsamplings
        downs = [(in_channels, widths[0], 7, 2), (widths[0], widths[1], 3, 2),
                 (widths[1], widths[2], 3, 2), (widths[2], widths[3], 3, 2),
                 (widths[3], widths[4], 3, 1)]
        counts = (*conv_depths[:2], conv_depths[2], *depths)
        self.downsamples = nn.ModuleList([
            _Downsample(c_in, c_out, k, s, i == 0, **n)
            for i, (c_in, c_out, k, s) in enumerate(downs)
        ])
        stages = []
        for i, (count, width) in enumerate(zip(counts, widths, strict=True)):
            if i < 3:
                blocks = [MetaConvBlock(width, mlp_ratio, **n) for _ in range(count)]
            else:
                blocks = [MetaTransformerBlock(width, num_heads, mlp_ratio, attention, **n)
                          for _ in range(count)]
            stages.append(nn.Sequential(*blocks) if blocks else nn.Identity())
        self.stages = nn.ModuleList(stages)
        self.head_neuron = make_neuron(neuron, neuron_kwargs)
        self.head = nn.Linear(widths[4], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"MetaSpikeFormer: expected a sequence of images "
                             f"[T, B, {self.in_channels}, H, W], got {tuple(x.shape)}")
        for down, stage in zip(self.downsamples, self.stages, strict=True):
            x = stage(down(x))
        return self.head(self.head_neuron(x.flatten(3).mean(3)))


def meta_spikeformer_imagenet(**kwargs: Any) -> MetaSpikeFormer:
    """Meta-SpikeFormer for ImageNet (224x224), widths ``(64, 128, 256, 360)``: 15,112,208
    parameters (the paper's table: 15.1M); ``widths=(96, 192, 384, 480)`` (the authors'
    ``metaspikformer_8_384``) gives 31,333,864 (31.3M) and ``widths=(128, 256, 512, 640)``
    (their ``metaspikformer_8_512``) 55,350,248 (55.4M). Keyword arguments override the
    configuration."""
    config: dict[str, Any] = {
        "in_channels": 3, "num_classes": 1000, "widths": (64, 128, 256, 360), "num_heads": 8,
        "conv_depths": (1, 1, 2), "depths": (6, 2),
    }
    return MetaSpikeFormer(**{**config, **kwargs})


def sdt_cifar10(**kwargs: Any) -> SpikeDrivenTransformer:
    """Spike-driven Transformer-2-512 for CIFAR-10 (32x32 images, 4x4 patches: the stem pools
    after its last two convolutions, the authors' ``pooling_stat: "0011"``): 10,233,418
    parameters. The paper's CIFAR table prints one count, 10.28M, for CIFAR-10 and CIFAR-100:
    that of the 100-class model (:func:`sdt_cifar100`); the 10-class head has 46,170 fewer.
    ``embed_dim=256`` gives the 2-256 model (2,566,954)."""
    config: dict[str, Any] = {
        "in_channels": 3, "num_classes": 10, "embed_dim": 512, "num_heads": 8, "depth": 2,
        "pools": (False, False, True, True),
    }
    return SpikeDrivenTransformer(**{**config, **kwargs})


def sdt_cifar100(**kwargs: Any) -> SpikeDrivenTransformer:
    """Spike-driven Transformer-2-512 for CIFAR-100: 10,279,588 parameters (the paper's table:
    10.28M); ``embed_dim=256`` gives 2,590,084."""
    return sdt_cifar10(**{"num_classes": 100, **kwargs})
