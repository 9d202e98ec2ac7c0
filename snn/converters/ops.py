"""The table of operations the converter understands, by category.

- ``affine``: linear or affine in its (single) time-varying input, applied unchanged at every
  time step (Conv, Linear, average pooling, additions, scaling by a constant) and every pure
  layout operation (reshapes, ``transpose``/``permute``, ``chunk``/``split``/``unbind``,
  ``cat``/``stack``, ``expand``, indexing and slicing) on any dimension but the batch's. Time
  averaging commutes with these, so they need no spiking counterpart.
- ``activation``: a ReLU-style activation (``clip(x, 0, a)``) or :class:`~snn.converters.QCFS`,
  replaced by an IF neuron.
- ``maxpool``: max pooling, replaced by :class:`~snn.converters.SpikingMaxPool`.
- ``nonlinear``: LayerNorm, GELU, SiLU, softmax, sigmoid, tanh; ``product``: the product of two
  activations (``matmul``, ``bmm``, ``*``). Both become expectation-compensation modules
  (:mod:`snn.converters.expectation`) fed by signed multi-threshold neurons.
- ``batchnorm``, ``dropout``, ``identity``: folded or removed by the passes.
- ``neuron``, ``site``: the converter's own modules (and :class:`~snn.converters.ResidualAdd`,
  ``affine``: an addition of time-varying operands, made a module so that it is counted).

Every entry has a conversion test (``tests/converters/test_converter_optable.py`` iterates these
tables).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snn.converters.expectation import Expectation, SignedIFActivation, SignedSite
from snn.converters.modules import (
    ActivationSite,
    ChannelAffine,
    IFActivation,
    ResidualAdd,
    SpikingMaxPool,
)
from snn.converters.qcfs import QCFS

__all__ = ["FUNCTION_KINDS", "METHOD_KINDS", "MODULE_KINDS", "REASONS"]

MODULE_KINDS: dict[type[nn.Module], str] = {
    nn.Conv1d: "affine",
    nn.Conv2d: "affine",
    nn.Conv3d: "affine",
    nn.Linear: "affine",
    nn.AvgPool1d: "affine",
    nn.AvgPool2d: "affine",
    nn.AvgPool3d: "affine",
    nn.AdaptiveAvgPool1d: "affine",
    nn.AdaptiveAvgPool2d: "affine",
    nn.AdaptiveAvgPool3d: "affine",
    nn.Flatten: "affine",
    nn.Unflatten: "affine",
    nn.ZeroPad2d: "affine",
    ChannelAffine: "affine",
    ResidualAdd: "affine",
    nn.BatchNorm1d: "batchnorm",
    nn.BatchNorm2d: "batchnorm",
    nn.BatchNorm3d: "batchnorm",
    nn.Dropout: "dropout",
    nn.Dropout1d: "dropout",
    nn.Dropout2d: "dropout",
    nn.Dropout3d: "dropout",
    nn.AlphaDropout: "dropout",
    nn.FeatureAlphaDropout: "dropout",
    nn.Identity: "identity",
    nn.LayerNorm: "nonlinear",
    nn.GELU: "nonlinear",
    nn.SiLU: "nonlinear",
    nn.Softmax: "nonlinear",
    nn.Sigmoid: "nonlinear",
    nn.Tanh: "nonlinear",
    nn.ReLU: "activation",
    nn.ReLU6: "activation",
    nn.Hardtanh: "activation",
    QCFS: "activation",
    ActivationSite: "activation",
    IFActivation: "neuron",
    nn.MaxPool1d: "maxpool",
    nn.MaxPool2d: "maxpool",
    nn.MaxPool3d: "maxpool",
    nn.AdaptiveMaxPool1d: "maxpool",
    nn.AdaptiveMaxPool2d: "maxpool",
    nn.AdaptiveMaxPool3d: "maxpool",
    SpikingMaxPool: "neuron",
    SignedSite: "site",
    SignedIFActivation: "neuron",
    Expectation: "neuron",
}
"""Leaf module types by category (exact types; subclasses are not assumed to behave alike)."""

FUNCTION_KINDS: dict[Callable[..., Any], str] = {
    operator.add: "affine",
    operator.sub: "affine",
    operator.neg: "affine",
    operator.pos: "affine",
    operator.getitem: "affine",
    getattr: "affine",
    torch.add: "affine",
    torch.sub: "affine",
    torch.cat: "affine",
    torch.concat: "affine",
    torch.flatten: "affine",
    torch.reshape: "affine",
    torch.squeeze: "affine",
    torch.unsqueeze: "affine",
    torch.mean: "affine",
    torch.transpose: "affine",
    torch.permute: "affine",
    torch.swapaxes: "affine",
    torch.swapdims: "affine",
    torch.movedim: "affine",
    torch.chunk: "affine",
    torch.split: "affine",
    torch.unbind: "affine",
    torch.stack: "affine",
    torch.unflatten: "affine",
    torch.narrow: "affine",
    torch.sum: "affine",
    F.linear: "affine",
    F.conv1d: "affine",
    F.conv2d: "affine",
    F.conv3d: "affine",
    F.avg_pool1d: "affine",
    F.avg_pool2d: "affine",
    F.avg_pool3d: "affine",
    F.adaptive_avg_pool1d: "affine",
    F.adaptive_avg_pool2d: "affine",
    F.adaptive_avg_pool3d: "affine",
    operator.mul: "scale",
    operator.truediv: "scale",
    torch.mul: "scale",
    torch.div: "scale",
    torch.matmul: "product",
    operator.matmul: "product",
    torch.bmm: "product",
    F.gelu: "nonlinear",
    F.silu: "nonlinear",
    F.layer_norm: "nonlinear",
    F.softmax: "nonlinear",
    torch.softmax: "nonlinear",
    torch.sigmoid: "nonlinear",
    torch.tanh: "nonlinear",
    F.relu: "activation",
    F.relu_: "activation",
    torch.relu: "activation",
    torch.relu_: "activation",
    F.relu6: "activation",
    F.hardtanh: "activation",
    torch.clamp: "activation",
    torch.clip: "activation",
    torch.clamp_min: "activation",
    F.max_pool1d: "maxpool",
    F.max_pool2d: "maxpool",
    F.max_pool3d: "maxpool",
    F.adaptive_max_pool1d: "maxpool",
    F.adaptive_max_pool2d: "maxpool",
    F.adaptive_max_pool3d: "maxpool",
    F.dropout: "dropout",
    F.dropout1d: "dropout",
    F.dropout2d: "dropout",
    F.dropout3d: "dropout",
    F.alpha_dropout: "dropout",
    F.feature_alpha_dropout: "dropout",
}
"""``call_function`` targets by category (``scale``: affine when at most one operand varies, a
product of two activations when both do; ``product``: affine when at most one operand varies)."""

METHOD_KINDS: dict[str, str] = {
    **dict.fromkeys(
        ["view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "squeeze",
         "unsqueeze", "contiguous", "clone", "add", "sub", "neg", "mean", "sum", "size", "dim",
         "transpose", "permute", "swapaxes", "swapdims", "movedim", "chunk", "split", "unbind",
         "expand", "expand_as", "narrow", "unfold"],
        "affine",
    ),
    **dict.fromkeys(["mul", "div"], "scale"),
    **dict.fromkeys(["matmul", "bmm"], "product"),
    **dict.fromkeys(["softmax", "sigmoid", "tanh"], "nonlinear"),
    **dict.fromkeys(["relu", "relu_", "clamp", "clamp_", "clip", "clamp_min", "clamp_min_"],
                    "activation"),
}
"""``call_method`` names (``Tensor.<name>``) by category."""


REASONS: dict[str, str] = {
    "GELU": "GELU is not a ReLU-style activation; an IF neuron's rate represents only "
    "clip(x, 0, threshold). Convert with nonlinear='expectation' (the default)",
    "gelu": "F.gelu is not a ReLU-style activation; an IF neuron's rate represents only "
    "clip(x, 0, threshold). Convert with nonlinear='expectation' (the default)",
    "LayerNorm": "it divides by statistics of the activation itself, which spike trains do "
    "not provide; convert with nonlinear='expectation' (the default)",
    "layer_norm": "it divides by statistics of the activation itself, which spike trains do "
    "not provide; convert with nonlinear='expectation' (the default)",
    "Softmax": "it is not a ReLU-style activation; convert with nonlinear='expectation' (the "
    "default)",
    "softmax": "it is not a ReLU-style activation; convert with nonlinear='expectation' (the "
    "default)",
}
"""Specific refusal reasons by module class or function name (each is tested to be the reason
given; ``nn.MultiheadAttention`` needs none: it is decomposed and converts)."""
