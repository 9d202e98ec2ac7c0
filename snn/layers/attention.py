r"""Spiking self-attention on time-first token sequences ``[T, B, N, D]``.

- :class:`SpikingSelfAttention` (SSA): Zhou et al., "Spikformer: When Spiking Neural Network
  Meets Transformer", ICLR 2023: spike :math:`Q, K, V`, :math:`SN(Q K^\top V \cdot s)`, no
  softmax;
- :class:`SpikeDrivenSelfAttention` (SDSA): Yao et al., "Spike-driven Transformer", NeurIPS
  2023: :math:`Q \otimes SN(\mathrm{SUM}_c(K \otimes V))`, masks and column sums only;
  ``variant="linear"`` is the spike-driven linear attention of Meta-SpikeFormer (Yao et al.,
  "Spike-driven Transformer V2: Meta Spiking Neural Network Architecture Inspiring the Design
  of Next-generation Neuromorphic Chips", ICLR 2024): :math:`SN(Q (K^\top V) \cdot s)`;
- :class:`QKAttention`: Zhou et al., "QKFormer: Hierarchical Spiking Transformer using Q-K
  Attention", NeurIPS 2024: token attention :math:`SN(\mathrm{SUM}_c(Q)) \otimes K` and
  channel attention :math:`SN(\mathrm{SUM}_t(Q)) \otimes K`.

The spike-spike arithmetic runs in three small modules, :class:`SpikeQKV`,
:class:`HadamardSum` and :class:`SpikeMask`, so that the energy counter
(:mod:`snn.energy.rules`) prices it as the papers count it.

Neurons are built by a factory, ``neuron`` (default :class:`snn.LIF`), called with keyword
options: for :class:`snn.LIF` the models' defaults (:data:`LIF_DEFAULTS`: :math:`\tau = 2`,
input scaled by :math:`1 - \beta`, hard reset to 0, reset detached, as in the papers' code)
updated by ``neuron_kwargs``; for any other factory only ``neuron_kwargs`` and the site's own
threshold (``threshold=0.5`` of the attention neuron) are passed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from snn.layers.lean import (
    lean_ready,
    pack_input,
    project,
    project_norm,
    spike_attention,
    spike_qkv,
)
from snn.layers.lean_masks import spike_mask, spike_product_sum
from snn.neurons.lif import LIF

__all__ = [
    "LIF_DEFAULTS",
    "HadamardSum",
    "QKAttention",
    "SpikeDrivenSelfAttention",
    "SpikeMask",
    "SpikeQKV",
    "SpikingSelfAttention",
    "TokenBatchNorm",
    "make_neuron",
]

NeuronFactory = Callable[..., nn.Module]

LIF_DEFAULTS: dict[str, Any] = {
    "beta": 0.5, "decay_input": True, "reset": "hard", "detach_reset": True,
}
"""Options of :class:`snn.LIF` in the spiking transformers (SpikingJelly's
``LIFNode(tau=2., detach_reset=True)`` of the papers' code)."""


def make_neuron(neuron: NeuronFactory = LIF, neuron_kwargs: dict[str, Any] | None = None,
                **site: Any) -> nn.Module:
    """Build one neuron: ``neuron(**options)``; see the module docstring for the options."""
    if not callable(neuron):
        raise TypeError(f"neuron must be a neuron class or factory, got {type(neuron).__name__}")
    base = dict(LIF_DEFAULTS) if neuron is LIF else {}
    return neuron(**{**base, **site, **(neuron_kwargs or {})})


def _check_tokens(name: str, x: Tensor, dim: int) -> None:
    if x.dim() != 4 or x.shape[-1] != dim:
        raise ValueError(f"{name}: expected tokens [T, B, N, {dim}], got {tuple(x.shape)}")


class TokenBatchNorm(nn.BatchNorm1d):
    """Batch norm over the last dimension of tokens ``[..., D]`` (statistics over every
    leading dimension: time, batch and tokens), as the ``Conv1d + BatchNorm1d`` of the
    papers' code."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class SpikeQKV(nn.Module):
    r""":math:`s \cdot Q K^\top V` per head, for spike (or integer) operands
    ``[..., N, d]``, computed as :math:`Q (K^\top V)` (cost :math:`2Nd^2`) when
    :math:`N > d`, else as :math:`(Q K^\top) V` (:math:`2N^2 d`): the two orders are equal,
    exactly so for integer operands."""

    def __init__(self, scale: float = 0.125):
        super().__init__()
        self.scale = float(scale)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        if q.shape[-2] > q.shape[-1]:
            lean = spike_qkv(q, k, v, self.scale)  # the same values, operands kept in 1 bit
            if lean is not None:
                return lean
            out = q @ (k.transpose(-2, -1) @ v)
        else:
            out = (q @ k.transpose(-2, -1)) @ v
        return out * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class HadamardSum(nn.Module):
    """Sum over ``dim`` of ``a * b`` (or of ``a`` alone): SDSA's column sum of
    :math:`K \\otimes V` and QKFormer's sums of :math:`Q`; ``keepdim`` is kept."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = int(dim)

    def forward(self, a: Tensor, b: Tensor | None = None) -> Tensor:
        if b is not None:
            lean = spike_product_sum(a, b, self.dim)  # the same values, a and b kept packed
            if lean is not None:
                return lean
        prod = a if b is None else a * b
        return prod.sum(self.dim, keepdim=True)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class SpikeMask(nn.Module):
    """``mask * x`` with a spike mask broadcast over ``x`` (SDSA's and QKFormer's masks)."""

    def forward(self, mask: Tensor, x: Tensor) -> Tensor:
        lean = spike_mask(mask, x)  # the same values, both kept packed
        return lean if lean is not None else mask * x


class _Projection(nn.Sequential):
    """Linear (as the papers' 1x1 convolution) followed by batch norm over the features."""

    def __init__(self, dim_in: int, dim_out: int, bias: bool):
        super().__init__(nn.Linear(dim_in, dim_out, bias=bias), TokenBatchNorm(dim_out))


def _heads(x: Tensor, heads: int) -> Tensor:
    """``[T, B, N, D]`` -> ``[T, B, H, N, D / H]``."""
    return x.unflatten(-1, (heads, x.shape[-1] // heads)).transpose(2, 3)


def _merge(x: Tensor) -> Tensor:
    """``[T, B, H, N, d]`` -> ``[T, B, N, H * d]``."""
    return x.transpose(2, 3).flatten(-2)


def _check_heads(dim: int, heads: int) -> None:
    if heads < 1 or dim % heads:
        raise ValueError(f"dim {dim} must be a positive multiple of num_heads {heads}")


class SpikingSelfAttention(nn.Module):
    r"""Spikformer's spiking self-attention (SSA), Zhou et al., ICLR 2023.

    .. math::
        Q, K, V = SN(BN(X W_{Q,K,V})), \qquad
        SSA(X) = SN(BN(SN(Q K^\top V \cdot s)\, W_O))

    with :math:`s = 0.125` and the attention neuron's threshold 0.5, as in the authors' code.

    Args:
        dim: token features ``D``.
        num_heads: heads (``D`` must be a multiple).
        scale: :math:`s`.
        attn_threshold: threshold of the neuron after :math:`Q K^\top V`.
        qkv_bias: bias in the Q, K, V projections (the authors' CIFAR code has one, their
            ImageNet code not).
        neuron, neuron_kwargs: the neuron factory and its options (module docstring).

    Input: spikes ``[T, B, N, D]``; output: spikes ``[T, B, N, D]`` (the residual is added by
    the block).
    """

    def __init__(self, dim: int, num_heads: int = 8, scale: float = 0.125,
                 attn_threshold: float = 0.5, qkv_bias: bool = False,
                 neuron: NeuronFactory = LIF, neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        _check_heads(dim, num_heads)
        self.dim, self.num_heads = int(dim), int(num_heads)
        self.q = _Projection(dim, dim, qkv_bias)
        self.q_neuron = make_neuron(neuron, neuron_kwargs)
        self.k = _Projection(dim, dim, qkv_bias)
        self.k_neuron = make_neuron(neuron, neuron_kwargs)
        self.v = _Projection(dim, dim, qkv_bias)
        self.v_neuron = make_neuron(neuron, neuron_kwargs)
        self.qkv = SpikeQKV(scale)
        self.attn_neuron = make_neuron(neuron, neuron_kwargs, threshold=attn_threshold)
        self.proj = _Projection(dim, dim, True)
        self.proj_neuron = make_neuron(neuron, neuron_kwargs)

    def forward(self, x: Tensor) -> Tensor:
        _check_tokens("SpikingSelfAttention", x, self.dim)
        h = self.num_heads
        # snn.layers.lean: the same values, with less kept for backward (x packed once)
        packed = pack_input(x) if lean_ready(self.q, self.q_neuron, x) else None
        q = _heads(project(self.q, self.q_neuron, x, packed), h)
        k = _heads(project(self.k, self.k_neuron, x, packed), h)
        v = _heads(project(self.v, self.v_neuron, x, packed), h)
        attn = spike_attention(self.qkv, self.attn_neuron, q, k, v)  # SN(merge(qkv(q, k, v)))
        return project(self.proj, self.proj_neuron, attn)


class SpikeDrivenSelfAttention(nn.Module):
    r"""Spike-driven self-attention (SDSA), Yao et al., NeurIPS 2023, and Meta-SpikeFormer's
    linear variant (Yao et al., ICLR 2024).

    ``variant="mask"`` (Spike-driven Transformer, its Eq. 11):

    .. math:: SDSA(Q, K, V) = Q \otimes SN(\mathrm{SUM}_c(K \otimes V))

    where :math:`\mathrm{SUM}_c` sums each column (feature) over the tokens and the neuron
    has threshold 0.5: masks (logical ANDs of spikes) and additions only.

    ``variant="linear"`` (Meta-SpikeFormer's SDSA with re-ordered products):

    .. math:: SDSA(Q, K, V) = SN(Q (K^\top V) \cdot s)

    As in both papers' membrane-shortcut blocks the input is the residual stream (membrane
    values), which a first neuron turns into spikes (``pre_neuron=True``); the output is the
    projection :math:`BN(\cdot\, W_O)` *before* the residual addition, without a neuron.

    Checked against Meta-SpikeFormer's released code (``MS_Attention_RepConv_qkv_id`` in
    ``classification/models.py`` of BICLab/Spike-Driven-Transformer-V2, the variant the paper
    calls SDSA-3): the ``"linear"`` arithmetic is the same (a neuron on the
    membrane input; binary LIF neurons, :math:`\tau = 2`, hard reset, for Q, K, V; :math:`K^\top
    V` per head, then :math:`Q (\cdot)` scaled by :math:`s = 0.125`; an attention LIF neuron of
    threshold 0.5; no neuron after the output projection). It differs from the paper's block in
    the projections only: here they are token-wise linear maps with batch norm (the Spike-driven
    Transformer's), there RepConv 3x3 convolutions on the 2-D feature map, which tokens
    ``[T, B, N, D]`` do not carry; :class:`snn.models.meta_spikeformer.MetaSDSA` is the paper's
    block with them.

    Args:
        dim: token features ``D``; num_heads: heads.
        variant: ``"mask"`` or ``"linear"``.
        scale: :math:`s` of the linear variant.
        attn_threshold: threshold of the attention neuron.
        pre_neuron: fire the input first (membrane shortcut).
        neuron, neuron_kwargs: the neuron factory and its options (module docstring).

    Input ``[T, B, N, D]`` (membrane or spikes), output ``[T, B, N, D]``.
    """

    VARIANTS = ("mask", "linear")

    def __init__(self, dim: int, num_heads: int = 8, variant: str = "mask",
                 scale: float = 0.125, attn_threshold: float = 0.5, pre_neuron: bool = True,
                 neuron: NeuronFactory = LIF, neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        _check_heads(dim, num_heads)
        if variant not in self.VARIANTS:
            raise ValueError(f"SDSA variant must be one of {self.VARIANTS}, got {variant!r}")
        self.dim, self.num_heads, self.variant = int(dim), int(num_heads), variant
        self.pre = make_neuron(neuron, neuron_kwargs) if pre_neuron else nn.Identity()
        self.q = _Projection(dim, dim, False)
        self.q_neuron = make_neuron(neuron, neuron_kwargs)
        self.k = _Projection(dim, dim, False)
        self.k_neuron = make_neuron(neuron, neuron_kwargs)
        self.v = _Projection(dim, dim, False)
        self.v_neuron = make_neuron(neuron, neuron_kwargs)
        if variant == "mask":
            self.column_sum = HadamardSum(dim=-2)
            self.mask = SpikeMask()
        else:
            self.qkv = SpikeQKV(scale)
        self.attn_neuron = make_neuron(neuron, neuron_kwargs, threshold=attn_threshold)
        self.proj = _Projection(dim, dim, True)

    def forward(self, x: Tensor) -> Tensor:
        _check_tokens("SpikeDrivenSelfAttention", x, self.dim)
        h = self.num_heads
        s = self.pre(x)
        # snn.layers.lean: the same values, with less kept for backward (s packed once)
        packed = pack_input(s) if lean_ready(self.q, self.q_neuron, s) else None
        q = _heads(project(self.q, self.q_neuron, s, packed), h)
        k = _heads(project(self.k, self.k_neuron, s, packed), h)
        v = _heads(project(self.v, self.v_neuron, s, packed), h)
        if self.variant == "mask":
            kv = self.attn_neuron(self.column_sum(k, v))  # [T, B, H, 1, d]
            out = _merge(self.mask(kv, q))
        else:
            out = spike_attention(self.qkv, self.attn_neuron, q, k, v)  # SN(merge(qkv))
        return project_norm(self.proj, out)


class QKAttention(nn.Module):
    r"""QKFormer's Q-K attention, Zhou et al., NeurIPS 2024.

    Token attention (``kind="token"``, QKTA, the paper's Eq. 6-7):
    :math:`A_t = SN(\sum_{c} Q_{:, c})` is a binary vector over tokens and the output is
    :math:`A_t \otimes K`; channel attention (``kind="channel"``, QKCA):
    :math:`A_c = SN(\sum_{n} Q_{n, :})` over channels, output :math:`A_c \otimes K`. Sums run
    within each head; the attention neuron has threshold 0.5, then a projection
    :math:`SN(BN(\cdot\, W_O))`.

    Args:
        dim, num_heads: token features and heads.
        kind: ``"token"`` or ``"channel"``.
        attn_threshold: threshold of the attention neuron.
        neuron, neuron_kwargs: the neuron factory and its options (module docstring).

    Input spikes ``[T, B, N, D]``, output spikes ``[T, B, N, D]``.
    """

    KINDS = ("token", "channel")

    def __init__(self, dim: int, num_heads: int = 8, kind: str = "token",
                 attn_threshold: float = 0.5, neuron: NeuronFactory = LIF,
                 neuron_kwargs: dict[str, Any] | None = None):
        super().__init__()
        _check_heads(dim, num_heads)
        if kind not in self.KINDS:
            raise ValueError(f"QKAttention kind must be one of {self.KINDS}, got {kind!r}")
        self.dim, self.num_heads, self.kind = int(dim), int(num_heads), kind
        self.q = _Projection(dim, dim, False)
        self.q_neuron = make_neuron(neuron, neuron_kwargs)
        self.k = _Projection(dim, dim, False)
        self.k_neuron = make_neuron(neuron, neuron_kwargs)
        self.reduce = HadamardSum(dim=-1 if kind == "token" else -2)
        self.attn_neuron = make_neuron(neuron, neuron_kwargs, threshold=attn_threshold)
        self.mask = SpikeMask()
        self.proj = _Projection(dim, dim, True)
        self.proj_neuron = make_neuron(neuron, neuron_kwargs)

    def forward(self, x: Tensor) -> Tensor:
        _check_tokens("QKAttention", x, self.dim)
        h = self.num_heads
        # snn.layers.lean: the same values, with less kept for backward (x packed once)
        packed = pack_input(x) if lean_ready(self.q, self.q_neuron, x) else None
        q = _heads(project(self.q, self.q_neuron, x, packed), h)
        k = _heads(project(self.k, self.k_neuron, x, packed), h)
        attn = self.attn_neuron(self.reduce(q))  # [T, B, H, N, 1] or [T, B, H, 1, d]
        return project(self.proj, self.proj_neuron, _merge(self.mask(attn, k)))
