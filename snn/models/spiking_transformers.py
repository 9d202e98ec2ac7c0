"""Spiking vision transformers: Spikformer, Spike-driven Transformer and QKFormer.

References:
    Z. Zhou, Y. Zhu, C. He, Y. Wang, S. Yan, Y. Tian, L. Yuan, "Spikformer: When Spiking
    Neural Network Meets Transformer", ICLR 2023.
    M. Yao, J. Hu, Z. Zhou, L. Yuan, Y. Tian, B. Xu, G. Li, "Spike-driven Transformer",
    NeurIPS 2023.
    C. Zhou, H. Zhang, Z. Zhou, L. Yu, L. Huang, X. Fan, L. Yuan, Z. Ma, H. Zhou, Y. Tian,
    "QKFormer: Hierarchical Spiking Transformer using Q-K Attention", NeurIPS 2024.

Every model takes images as a time-first sequence ``[T, B, C, H, W]`` (repeat a static image
over T for direct encoding) and returns per-step logits ``[T, B, num_classes]``; the papers'
heads classify the time-mean of the features, which equals the time-mean of these logits
because the head is linear.

Parameter counts of the published configurations (``count_parameters``) agree with the
papers' tables to the tables' two decimals (tested); exact counts are in the builders'
docstrings. The papers' own code builds ``LayerNorm`` modules that it never calls: they are
not built here and not in the tables' counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from snn.layers.attention import (
    NeuronFactory,
    QKAttention,
    SpikeDrivenSelfAttention,
    SpikingSelfAttention,
    TokenBatchNorm,
    make_neuron,
)
from snn.layers.lean import project, project_norm
from snn.layers.stems import (
    QKFormerPatchEmbed,
    QKFormerPatchEmbedInit,
    SpikeDrivenPatchSplitting,
    SpikingPatchSplitting,
)
from snn.neurons.lif import LIF

__all__ = [
    "QKFormer",
    "SpikeDrivenTransformer",
    "Spikformer",
    "count_parameters",
    "qkformer_imagenet",
    "sdt_imagenet",
    "spikformer_cifar10",
    "spikformer_imagenet",
]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (what the papers' tables report)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _init_linear(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _tokens(x: Tensor) -> Tensor:
    """``[T, B, D, H, W]`` -> ``[T, B, H*W, D]``."""
    return x.flatten(3).transpose(2, 3)


def _image(x: Tensor, like: Tensor) -> Tensor:
    """``[T, B, H*W, D]`` -> the shape of ``like`` ``[T, B, D, H, W]``."""
    return x.transpose(2, 3).reshape(like.shape)


def _check_input(name: str, x: Tensor, channels: int) -> None:
    if x.dim() != 5 or x.shape[2] != channels:
        raise ValueError(
            f"{name}: expected a sequence of images [T, B, {channels}, H, W], got "
            f"{tuple(x.shape)}"
        )


class SpikingMLP(nn.Module):
    """Spikformer's MLP on tokens ``[T, B, N, D]``: ``SN(BN(SN(BN(x W1)) W2))``."""

    def __init__(self, dim: int, hidden: int, bias: bool = True, neuron: NeuronFactory = LIF,
                 neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        self.fc1 = nn.Sequential(nn.Linear(dim, hidden, bias=bias), TokenBatchNorm(hidden))
        self.neuron1 = make_neuron(neuron, neuron_kwargs)
        self.fc2 = nn.Sequential(nn.Linear(hidden, dim, bias=bias), TokenBatchNorm(dim))
        self.neuron2 = make_neuron(neuron, neuron_kwargs)

    def forward(self, x: Tensor) -> Tensor:
        # snn.layers.lean.project: the same values, with less kept for backward
        return project(self.fc2, self.neuron2, project(self.fc1, self.neuron1, x))


class SpikformerBlock(nn.Module):
    """``x + SSA(x)``, then ``x + MLP(x)``, on tokens ``[T, B, N, D]``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = False, neuron: NeuronFactory = LIF,
                 neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        n = {"neuron": neuron, "neuron_kwargs": neuron_kwargs}
        self.attn = SpikingSelfAttention(dim, num_heads, qkv_bias=qkv_bias, **n)
        self.mlp = SpikingMLP(dim, int(dim * mlp_ratio), **n)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class Spikformer(nn.Module):
    """Spikformer-``depth``-``embed_dim`` (Zhou et al., ICLR 2023).

    Args:
        in_channels: image channels.
        num_classes: outputs.
        embed_dim: token features ``D``.
        num_heads: attention heads.
        depth: Spikformer blocks.
        mlp_ratio: hidden width of the MLP over ``D``.
        pools: where the SPS stem pools (see :class:`snn.layers.stems.SpikingPatchSplitting`):
            ``(0, 0, 1, 1)`` for 4x4 patches (CIFAR), ``(1, 1, 1, 1)`` for 16x16 (ImageNet).
        qkv_bias: bias in the Q/K/V projections (the authors' CIFAR code: yes; ImageNet: no).
        neuron, neuron_kwargs: neuron factory and options.

    Input ``[T, B, C, H, W]``, output ``[T, B, num_classes]``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, embed_dim: int = 384,
                 num_heads: int = 12, depth: int = 4, mlp_ratio: float = 4.0,
                 pools: Sequence[bool] = (False, False, True, True), qkv_bias: bool = True,
                 neuron: NeuronFactory = LIF, neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        n = {"neuron": neuron, "neuron_kwargs": neuron_kwargs}
        self.in_channels = int(in_channels)
        self.patch_embed = SpikingPatchSplitting(in_channels, embed_dim, pools, **n)
        self.blocks = nn.Sequential(*(
            SpikformerBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, **n) for _ in range(depth)
        ))
        self.head = nn.Linear(embed_dim, num_classes)
        _init_linear(self)

    def forward(self, x: Tensor) -> Tensor:
        _check_input("Spikformer", x, self.in_channels)
        tokens = self.blocks(_tokens(self.patch_embed(x)).contiguous())
        return self.head(tokens.mean(2))


def spikformer_cifar10(**kwargs: Any) -> Spikformer:
    """Spikformer-4-384 for CIFAR-10 (32x32, 4x4 patches): 9,324,730 parameters (the
    paper's Table: 9.32M). Keyword arguments override the configuration."""
    config: dict[str, Any] = {
        "in_channels": 3, "num_classes": 10, "embed_dim": 384, "num_heads": 12, "depth": 4,
        "pools": (False, False, True, True), "qkv_bias": True,
    }
    return Spikformer(**{**config, **kwargs})


def spikformer_imagenet(**kwargs: Any) -> Spikformer:
    """Spikformer-8-384 for ImageNet (224x224, 16x16 patches): 16,816,024 parameters (the
    paper's Table: 16.81M); ``embed_dim=512`` gives 29,689,384 (29.68M), ``768`` with
    ``num_heads=12`` 66,338,632 (66.34M)."""
    config: dict[str, Any] = {
        "in_channels": 3, "num_classes": 1000, "embed_dim": 384, "num_heads": 12, "depth": 8,
        "pools": (True, True, True, True), "qkv_bias": False,
    }
    return Spikformer(**{**config, **kwargs})


class SpikeDrivenMLP(nn.Module):
    """The Spike-driven Transformer's membrane-shortcut MLP on tokens:
    ``x + BN(SN(BN(SN(x) W1)) W2)``."""

    def __init__(self, dim: int, hidden: int, neuron: NeuronFactory = LIF,
                 neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        self.neuron1 = make_neuron(neuron, neuron_kwargs)
        self.fc1 = nn.Sequential(nn.Linear(dim, hidden), TokenBatchNorm(hidden))
        self.neuron2 = make_neuron(neuron, neuron_kwargs)
        self.fc2 = nn.Sequential(nn.Linear(hidden, dim), TokenBatchNorm(dim))

    def forward(self, x: Tensor) -> Tensor:
        # snn.layers.lean.project: the same values, with less kept for backward
        return x + project_norm(self.fc2, project(self.fc1, self.neuron2, self.neuron1(x)))


class SpikeDrivenBlock(nn.Module):
    """``x + SDSA(x)``, then the membrane-shortcut MLP, on membrane tokens ``[T, B, N, D]``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 variant: str = "mask", neuron: NeuronFactory = LIF,
                 neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        n = {"neuron": neuron, "neuron_kwargs": neuron_kwargs}
        self.attn = SpikeDrivenSelfAttention(dim, num_heads, variant=variant, **n)
        self.mlp = SpikeDrivenMLP(dim, int(dim * mlp_ratio), **n)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x + self.attn(x))


class SpikeDrivenTransformer(nn.Module):
    """Spike-driven Transformer-``depth``-``embed_dim`` (Yao et al., NeurIPS 2023).

    Membrane shortcuts throughout: the residual stream is a membrane and every branch starts
    with a neuron. The head fires the token-mean of the stream and classifies the spikes.

    Args:
        in_channels, num_classes, embed_dim, num_heads, depth, mlp_ratio: as in
            :class:`Spikformer`.
        pools: where the stem pools (ImageNet: all four).
        variant: SDSA variant (``"mask"``, the paper's; ``"linear"``, Meta-SpikeFormer's).
        neuron, neuron_kwargs: neuron factory and options.

    Input ``[T, B, C, H, W]``, output ``[T, B, num_classes]``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, embed_dim: int = 384,
                 num_heads: int = 8, depth: int = 8, mlp_ratio: float = 4.0,
                 pools: Sequence[bool] = (True, True, True, True), variant: str = "mask",
                 neuron: NeuronFactory = LIF, neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        n = {"neuron": neuron, "neuron_kwargs": neuron_kwargs}
        self.in_channels = int(in_channels)
        self.patch_embed = SpikeDrivenPatchSplitting(in_channels, embed_dim, pools, **n)
        self.blocks = nn.Sequential(*(
            SpikeDrivenBlock(embed_dim, num_heads, mlp_ratio, variant, **n)
            for _ in range(depth)
        ))
        self.head_neuron = make_neuron(neuron, neuron_kwargs)
        self.head = nn.Linear(embed_dim, num_classes)
        _init_linear(self)

    def forward(self, x: Tensor) -> Tensor:
        _check_input("SpikeDrivenTransformer", x, self.in_channels)
        tokens = self.blocks(_tokens(self.patch_embed(x)))
        return self.head(self.head_neuron(tokens.mean(2)))


def sdt_imagenet(**kwargs: Any) -> SpikeDrivenTransformer:
    """Spike-driven Transformer-8-384 for ImageNet: 16,816,024 parameters (the paper's
    Table: 16.81M); ``embed_dim=512`` gives 29,689,384 (29.68M), ``embed_dim=512, depth=6``
    23,373,352 (23.37M), ``embed_dim=512, depth=10`` 36,005,416 (36.01M), ``embed_dim=768``
    66,338,632 (66.34M). (SpikingJelly's port adds biases to the stem convolutions that the
    authors' code does not have.)"""
    config: dict[str, Any] = {
        "in_channels": 3, "num_classes": 1000, "embed_dim": 384, "num_heads": 8, "depth": 8,
        "pools": (True, True, True, True),
    }
    return SpikeDrivenTransformer(**{**config, **kwargs})


class QKFormerBlock(nn.Module):
    """``x + A(x)``, then ``x + MLP(x)`` with ``A`` a Q-K attention (stages 1-2) or SSA
    (stage 3), on spike tokens ``[T, B, N, D]``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, attention: str,
                 neuron: NeuronFactory = LIF, neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        n = {"neuron": neuron, "neuron_kwargs": neuron_kwargs}
        if attention == "ssa":
            self.attn: nn.Module = SpikingSelfAttention(dim, num_heads, **n)
        else:
            self.attn = QKAttention(dim, num_heads, kind=attention, **n)
        self.mlp = SpikingMLP(dim, int(dim * mlp_ratio), **n)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class QKFormer(nn.Module):
    """QKFormer, the hierarchical spiking transformer (Zhou et al., NeurIPS 2024).

    Three stages at widths ``D/4, D/2, D`` and 4x, 8x, 16x downsampling: each starts with a
    patch embedding (:mod:`snn.layers.stems`) and stacks blocks; stages 1 and 2 use Q-K
    attention (``kind``: token, QKTA, by default), stage 3 Spikformer's SSA.

    Args:
        in_channels, num_classes: image channels and outputs.
        embed_dim: ``D`` (a multiple of 4).
        num_heads: heads per stage.
        depths: blocks per stage.
        mlp_ratio: MLP width over the stage's features.
        kind: Q-K attention of stages 1-2, ``"token"`` or ``"channel"``.
        neuron, neuron_kwargs: neuron factory and options.

    Input ``[T, B, C, H, W]``, output ``[T, B, num_classes]``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, embed_dim: int = 384,
                 num_heads: Sequence[int] = (6, 6, 6), depths: Sequence[int] = (1, 2, 7),
                 mlp_ratio: float = 4.0, kind: str = "token", neuron: NeuronFactory = LIF,
                 neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        if embed_dim % 4:
            raise ValueError(f"QKFormer: embed_dim must be a multiple of 4, got {embed_dim}")
        if len(num_heads) != 3 or len(depths) != 3:
            raise ValueError("QKFormer: num_heads and depths take one value per stage (3)")
        n = {"neuron": neuron, "neuron_kwargs": neuron_kwargs}
        self.in_channels = int(in_channels)
        dims = (embed_dim // 4, embed_dim // 2, embed_dim)
        self.embeds = nn.ModuleList([
            QKFormerPatchEmbedInit(in_channels, dims[0], **n),
            QKFormerPatchEmbed(dims[0], dims[1], **n),
            QKFormerPatchEmbed(dims[1], dims[2], **n),
        ])
        kinds = (kind, kind, "ssa")
        self.stages = nn.ModuleList([
            nn.Sequential(*(QKFormerBlock(dims[i], num_heads[i], mlp_ratio, kinds[i], **n)
                            for _ in range(depths[i])))
            for i in range(3)
        ])
        self.head = nn.Linear(embed_dim, num_classes)
        _init_linear(self)

    def forward(self, x: Tensor) -> Tensor:
        _check_input("QKFormer", x, self.in_channels)
        for embed, stage in zip(self.embeds, self.stages, strict=True):
            x = embed(x)
            x = _image(stage(_tokens(x)), x)
        return self.head(x.flatten(3).mean(3))


def qkformer_imagenet(**kwargs: Any) -> QKFormer:
    """QKFormer HST-10-384 for ImageNet: 16,473,688 parameters (the paper's Table: 16.47M);
    ``embed_dim=512, num_heads=(8, 8, 8)`` gives 29,079,336 (29.08M), ``embed_dim=768,
    num_heads=(12, 12, 12)`` 64,962,760 (64.96M). (SpikingJelly's port drops the bias of the
    attention projections and adds biases to the stem convolutions.)"""
    config: dict[str, Any] = {
        "in_channels": 3, "num_classes": 1000, "embed_dim": 384, "num_heads": (6, 6, 6),
        "depths": (1, 2, 7),
    }
    return QKFormer(**{**config, **kwargs})
