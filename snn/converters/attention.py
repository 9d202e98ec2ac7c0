"""``nn.MultiheadAttention`` written out as the operations it performs, so that it converts.

``nn.MultiheadAttention`` is a fused black box to ``torch.fx``. Before tracing,
:func:`decompose_attention` replaces every instance in (a copy of) the model by
:class:`DecomposedAttention`, which holds the very same parameters and computes the same
function with Linear projections, ``matmul``, ``softmax`` and reshapes, each of which has an
entry in the op table (the products and the softmax become expectation-compensation modules).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from snn.converters.errors import UnsupportedOperationError

__all__ = ["DecomposedAttention", "decompose_attention"]


def _unsupported(name: str, reason: str) -> UnsupportedOperationError:
    return UnsupportedOperationError("nn.MultiheadAttention", f"{reason} ({name})")


class DecomposedAttention(nn.Module):
    """Multi-head attention as explicit operations on ``[B, N, D]`` inputs (batch first), with
    the parameters of an ``nn.MultiheadAttention``; returns ``(output, weights)`` like it, the
    weights (averaged over heads) only when ``need_weights`` is true.

    Args:
        mha: the module to take the parameters from (batch_first, one embedding size for
            query, key and value, no extra key/value bias, no zero attention).
        name: its name in the model, for error messages.

    Raises:
        UnsupportedOperationError: when called, for the configurations above or masks.
    """

    def __init__(self, mha: nn.MultiheadAttention, name: str = ""):
        super().__init__()
        self.problem = None  # raised when called, so that the error names the calling line
        if not mha.batch_first:
            self.problem = ("only batch_first=True converts: the converted network folds time "
                            "into dimension 0, which must be the batch")
        elif not mha._qkv_same_embed_dim:
            self.problem = "separate key/value dimensions (kdim, vdim) are not supported"
        elif mha.bias_k is not None or mha.add_zero_attn:
            self.problem = "add_bias_kv and add_zero_attn are not supported"
        self.heads = mha.num_heads
        # the packed input projection as three Linear layers (a module each, so that the
        # energy counter counts their synaptic operations)
        e = mha.embed_dim
        bias = mha.in_proj_bias
        for i, proj in enumerate(("q_proj", "k_proj", "v_proj")):
            layer = nn.Linear(e, e, bias=bias is not None)
            if self.problem is None:
                with torch.no_grad():
                    layer.weight.copy_(mha.in_proj_weight[i * e:(i + 1) * e])
                    if bias is not None:
                        layer.bias.copy_(bias[i * e:(i + 1) * e])
            setattr(self, proj, layer)
        self.out_proj = nn.Linear(mha.embed_dim, mha.embed_dim, bias=mha.out_proj.bias is not None)
        self.out_proj.weight = mha.out_proj.weight
        if mha.out_proj.bias is not None:
            self.out_proj.bias = mha.out_proj.bias
        self.name = name

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        if self.problem is not None:
            raise _unsupported(self.name, self.problem)
        if key_padding_mask is not None or attn_mask is not None or is_causal:
            raise _unsupported(self.name, "attention masks are not supported")
        h = self.heads
        q, k, v = self.q_proj(query), self.k_proj(key), self.v_proj(value)
        d = q.shape[-1] // h
        q = q.unflatten(-1, (h, d)).transpose(1, 2)  # [B, h, N, d]
        k = k.unflatten(-1, (h, d)).transpose(1, 2)
        v = v.unflatten(-1, (h, d)).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-2, -1) * (1.0 / math.sqrt(d)), -1)
        out = self.out_proj((att @ v).transpose(1, 2).flatten(2))
        if not need_weights:
            return out, None
        return out, att.mean(1) if average_attn_weights else att


def decompose_attention(model: nn.Module) -> nn.Module:
    """Replace every ``nn.MultiheadAttention`` inside ``model`` (in place; pass a copy) by a
    :class:`DecomposedAttention` with the same parameters; returns ``model``."""
    if isinstance(model, nn.MultiheadAttention):
        return DecomposedAttention(model, "model")
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is nn.MultiheadAttention:
                full = f"{name}.{child_name}" if name else child_name
                setattr(module, child_name, DecomposedAttention(child, full))
    return model
