"""A fused CPU call leaves PyTorch's intra-op thread count as the caller set it (numba's
OpenMP layer shares the process-wide OpenMP setting that PyTorch reads)."""

from __future__ import annotations

import torch

from snn.neurons import LIF


def test_fused_call_keeps_torch_thread_count():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        x = torch.randn(4, 2, 10, requires_grad=True)
        LIF(backend="numba")(x).sum().backward()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
