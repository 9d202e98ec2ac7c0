"""Small stateless layers that NIR graphs need and ``torch.nn`` lacks."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Scale", "SumPool2d"]


class Scale(nn.Module):
    """Elementwise product with a fixed tensor (NIR ``Scale``): ``y = x * scale``.

    Args:
        scale: factors broadcast against one sample (a float or a tensor of the sample shape).
    """

    def __init__(self, scale: float | Tensor):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x.dtype)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.scale.shape)}"


class SumPool2d(nn.AvgPool2d):
    """Sum pooling (NIR ``SumPool2d``): the sum over each window (an average pool whose divisor
    is 1), padding counted as zeros."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ):
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        super().__init__(k, stride, padding, count_include_pad=True, divisor_override=1)
