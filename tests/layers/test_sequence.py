"""Every spiking sequence block of the registry: shapes, spikes, gradients, dtype, reset,
single step == sequence."""

from __future__ import annotations

import pytest
import torch

import snn
from snn.layers import SEQUENCE_BLOCKS, create_sequence_block

LOW = {"threshold": 0.2}


def _block(name: str):
    opts = {"neuron": "cuba_lif", "neuron_kwargs": LOW}
    if name == "spiking_lmu":
        opts.update(order=4, theta=5.0, norm=False)
    return create_sequence_block(name, 6, **opts)


@pytest.mark.parametrize("name", sorted(SEQUENCE_BLOCKS))
def test_block_contract(name):
    torch.manual_seed(0)
    block = _block(name)
    x = torch.randn(9, 2, 6, requires_grad=True)
    y = block(x)
    assert y.shape == (9, 2, 6) and torch.isfinite(y).all()
    y.pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    snn.reset(block)
    with torch.no_grad():
        again = block(x)
        assert torch.equal(again, y.detach())  # reset: the same output from the same input
        snn.reset(block)
        double = block.double()(x.double())
    assert double.dtype == torch.float64
    assert torch.allclose(double.float(), y.detach(), atol=1e-4)
    snn.set_step_mode(block, "single")
    with torch.no_grad():
        steps = torch.stack([block(x_t.double()) for x_t in x])
    assert torch.allclose(steps, double, atol=1e-10)


@pytest.mark.parametrize("name", sorted(SEQUENCE_BLOCKS))
def test_truncated_backpropagation_through_time(name):
    torch.manual_seed(0)
    block = _block(name)
    x = torch.randn(8, 2, 6)
    first = block(x[:4])
    first.sum().backward()
    snn.detach(block)  # the carried state leaves the first chunk's graph
    second = block(x[4:])
    second.sum().backward()  # would fail if the state still held the first graph
    snn.reset(block)
    with torch.no_grad():
        whole = block(x)
    assert torch.allclose(torch.cat([first, second]).detach(), whole, atol=1e-6)


def test_unknown_block():
    with pytest.raises(ValueError, match="spiking_rwkv"):
        create_sequence_block("mamba", 4)
