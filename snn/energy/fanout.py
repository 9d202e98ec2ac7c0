r"""Exact fan-out of every input element of linear, convolution and pooling layers.

The fan-out of an input element is the number of (output element, weight) pairs it enters. A
layer without bias is a linear map :math:`y = W x`; with the weights replaced by their nonzero
mask :math:`M = [W \neq 0]`,

.. math:: \frac{\partial}{\partial x_i} \sum_j (M x)_j = \sum_j M_{ji} = \text{fan-out}(x_i),

so one backward pass through the layer's own forward function (same stride, padding, padding
mode, dilation and groups) on a single all-ones sample gives the fan-out map of a whole input
shape: border elements that fewer kernel positions reach, elements that a stride skips (fan-out
0), grouped channels. Each spike (nonzero input) then costs exactly its fan-out in synaptic
operations.

Pooling layers are handled the same way with a sum pool: the map counts the windows each input
element belongs to.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["conv_fanout", "dense_conv_macs", "linear_fanout", "pool_dims", "pool_fanout"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE = (
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)


def pool_dims(layer: nn.Module) -> int:
    """Spatial dimensions (1, 2 or 3) of a pooling layer, from its torch base class."""
    for cls in type(layer).__mro__:
        if cls in _MAX_POOLS + _AVG_POOLS + _ADAPTIVE:
            return int(cls.__name__[-2])
    raise TypeError(f"expected a pooling layer, got {type(layer).__name__}")


def _grad_of_sum(fn: Callable[[Tensor], Tensor], shape: tuple[int, ...], device) -> Tensor:
    """``d sum(fn(x)) / dx`` at ``x = ones(shape)`` in float64, outside any no-grad or
    inference mode of the caller."""
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.ones(shape, dtype=torch.float64, device=device, requires_grad=True)
        (grad,) = torch.autograd.grad(fn(x).sum(), x)
    return grad.detach()


def linear_fanout(layer: nn.Linear, *, nonzero_only: bool = True) -> Tensor:
    """Fan-out of each input feature of ``layer``, ``[in_features]`` (float64).

    Args:
        layer: the linear layer.
        nonzero_only: count only synapses with a nonzero weight (else every synapse).
    """
    w = layer.weight.detach()
    if nonzero_only:
        return (w != 0).sum(0).to(torch.float64)
    return torch.full((w.shape[1],), float(w.shape[0]), dtype=torch.float64, device=w.device)


def conv_fanout(
    layer: nn.Module, in_shape: tuple[int, ...], *, nonzero_only: bool = True
) -> Tensor:
    """Fan-out map of one input sample ``in_shape = (C, *spatial)`` of a convolution.

    With zero padding the map is a transposed convolution of an all-ones output with the weight
    mask (or, when every weight counts, a single-channel one scaled by ``out_channels /
    groups``); other padding modes and string paddings use the gradient identity of the module
    docstring on the layer's own forward function.

    Args:
        layer: ``nn.Conv1d``, ``nn.Conv2d`` or ``nn.Conv3d`` (any padding mode).
        in_shape: shape of one input sample, without the batch dimension.
        nonzero_only: count only synapses with a nonzero weight (else every kernel tap).

    Returns:
        float64 tensor of shape ``in_shape``.
    """
    if not isinstance(layer, _CONVS):
        raise TypeError(f"expected a Conv1d/2d/3d layer, got {type(layer).__name__}")
    w = layer.weight.detach()
    mask = (w != 0) if nonzero_only else None
    if mask is not None and bool(mask.all()):
        mask = None  # every weight counts: the channel-independent map below is exact
    if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
        full = torch.ones_like(w, dtype=torch.float64) if mask is None else mask.to(torch.float64)
        return _grad_of_sum(
            lambda x: layer._conv_forward(x, full, None), (1, *in_shape), w.device
        )[0]
    dims = len(layer.kernel_size)
    spatial = in_shape[1:]
    out_sizes = [
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, p, d, k, s in zip(spatial, layer.padding, layer.dilation, layer.kernel_size,
                                 layer.stride)
    ]
    if any(o < 1 for o in out_sizes):
        raise ValueError(
            f"input sample shape {tuple(in_shape)} is too small for {layer}: no output positions"
        )
    output_padding = [
        n - ((o - 1) * s - 2 * p + d * (k - 1) + 1)
        for n, o, p, d, k, s in zip(spatial, out_sizes, layer.padding, layer.dilation,
                                    layer.kernel_size, layer.stride)
    ]
    transpose = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[dims]
    with torch.inference_mode(False), torch.no_grad():
        if mask is None:
            ones_out = torch.ones((1, 1, *out_sizes), device=w.device)
            kernel = torch.ones((1, 1, *layer.kernel_size), device=w.device)
            spatial_map = transpose(
                ones_out, kernel, None, layer.stride, layer.padding, output_padding, 1,
                layer.dilation,
            )[0, 0].to(torch.float64)
            per_channel = layer.out_channels // layer.groups
            return (spatial_map * per_channel).expand(in_shape).clone()
        ones_out = torch.ones((1, layer.out_channels, *out_sizes), device=w.device)
        fan = transpose(
            ones_out, mask.to(torch.float32), None, layer.stride, layer.padding, output_padding,
            layer.groups, layer.dilation,
        )[0]
    return fan.to(torch.float64)


def dense_conv_macs(layer: nn.Module, out_numel: int) -> int:
    """Multiply-accumulates of a dense convolution the way layer-wise MAC counters report them:
    every output element times its kernel taps (padding included), bias excluded."""
    taps = (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
    return int(out_numel) * int(taps)


def _window_sizes(in_size: int, out_size: int) -> Tensor:
    idx = torch.arange(out_size)
    start = torch.div(idx * in_size, out_size, rounding_mode="floor")
    end = torch.div((idx + 1) * in_size + out_size - 1, out_size, rounding_mode="floor")
    return (end - start).to(torch.float64)


def pool_fanout(layer: nn.Module, in_shape: tuple[int, ...]) -> Tensor | None:
    """Number of pooling windows each element of one input sample belongs to.

    Supports max and average pooling (1-3 d, padding, stride, ceil mode) and adaptive pooling.
    Returns ``None`` for a configuration this function cannot count exactly (max pooling with
    dilation other than 1), which the counter then reports as uncounted.

    Args:
        layer: the pooling layer.
        in_shape: shape of one input sample, without the batch dimension.

    Returns:
        float64 tensor of shape ``in_shape`` (on the CPU).
    """
    dims = pool_dims(layer)
    if isinstance(layer, _MAX_POOLS + _AVG_POOLS):
        if any(d != 1 for d in _as_tuple(getattr(layer, "dilation", 1), dims)):
            return None
        kernel = _as_tuple(layer.kernel_size, dims)
        stride = _as_tuple(layer.stride if layer.stride else layer.kernel_size, dims)
        padding = _as_tuple(layer.padding, dims)
        if dims == 1:  # avg_pool1d has no divisor_override: pool a [.., 1, L] image instead
            kernel, stride, padding = (1, *kernel), (1, *stride), (0, *padding)
        pool = F.avg_pool3d if dims == 3 else F.avg_pool2d

        def sum_pool(x: Tensor) -> Tensor:
            if dims == 1:
                x = x.unsqueeze(-2)
            return pool(
                x, kernel, stride, padding, ceil_mode=layer.ceil_mode, divisor_override=1
            )

        return _grad_of_sum(sum_pool, (1, *in_shape), "cpu")[0]
    if isinstance(layer, _ADAPTIVE):
        sizes_in = in_shape[-dims:]
        out = tuple(
            o if o is not None else s for o, s in zip(_as_tuple(layer.output_size, dims), sizes_in)
        )
        sizes = torch.ones(out, dtype=torch.float64)
        for d, (n_in, n_out) in enumerate(zip(sizes_in, out)):
            shape = [1] * dims
            shape[d] = n_out
            sizes = sizes * _window_sizes(n_in, n_out).reshape(shape)
        fn = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[dims]
        # the average times the window size is the window sum
        return _grad_of_sum(lambda x: fn(x, out) * sizes, (1, *in_shape), "cpu")[0]
    raise TypeError(f"expected a pooling layer, got {type(layer).__name__}")


def _as_tuple(value, n: int) -> tuple:
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,) * n
