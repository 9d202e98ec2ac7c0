"""Shapes whose bfloat16 convolution weight gradient torch 2.13's CPU path gets wrong.

With a kernel tap wholly in the padding and a stride larger than the number of kernel positions
along a spatial axis (``stride > size + 2 * padding - kernel + 1``; e.g. a 1x1 input, 3x3
kernel, stride 2, padding 1), ``F.conv2d``'s bfloat16 weight gradient on the CPU (oneDNN) holds
uninitialised memory: wrong in nearly every call, non-finite in about one call in ten. See
docs/known_issues.md. Tests of bfloat16 training pick inputs that avoid these shapes and check
that they do.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import snn
from snn.models import create_model


def is_hazard(conv: nn.Conv2d, spatial: tuple[int, ...]) -> bool:
    """Whether ``conv`` on an input of spatial size ``spatial`` (H, W) meets the defect.

    Only the width axis was seen to trigger it; both axes are checked.
    """
    for axis, size in enumerate(spatial):
        k, s, p = conv.kernel_size[axis], conv.stride[axis], conv.padding[axis]
        n_out = (size + 2 * p - k) // s + 1
        tap_in_padding = any(
            all(not 0 <= o * s + i - p < size for o in range(n_out)) for i in range(k)
        )
        if tap_in_padding and s > size + 2 * p - k + 1:
            return True
    return False


def conv_inputs(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Conv2d, tuple]]:
    """``(name, conv, input shape)`` of every ``Conv2d`` call of ``model(x)`` (eval, no grad)."""
    seen: list[tuple[str, nn.Conv2d, tuple]] = []
    hooks = [
        m.register_forward_pre_hook(
            lambda mod, inp, name=name: seen.append((name, mod, tuple(inp[0].shape)))
        )
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
    ]
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(training)
        snn.reset(model)
    return seen


def onednn_bf16_hazards(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Convolutions of ``model(x)`` that meet the defect, as ``"name (input shape)"``."""
    return [
        f"{name or type(conv).__name__} (input {shape})"
        for name, conv, shape in conv_inputs(model, x)
        if is_hazard(conv, shape[-2:])
    ]


def bf16_input_shape(
    name: str, options: dict[str, Any], shape: tuple[int, ...]
) -> tuple[int, ...]:
    """``shape`` of one sample, spatially doubled until no convolution of the zoo model
    ``name`` (built with ``options``) meets the defect."""
    model = create_model(name, **options)
    for _ in range(3):
        x = (torch.rand((1, 2, *shape), generator=torch.Generator().manual_seed(0)) < 0.3).float()
        if len(shape) < 3 or not onednn_bf16_hazards(model, x):
            return shape
        shape = (*shape[:-2], 2 * shape[-2], 2 * shape[-1])
    return shape
