"""Memory-efficient training (snn/training/memory.py): gradients, outputs and statistics equal
the plain path bit for bit."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import snn
from snn.models import create_model
from snn.training.memory import memory_efficient, plain


def _run(model: nn.Module, x: torch.Tensor):
    snn.reset(model)
    model.zero_grad()
    xs = x.clone().requires_grad_()
    out = model(xs)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return out.detach(), grads, xs.grad.clone(), buffers


def _assert_same(a, b) -> None:
    out_a, grads_a, xg_a, buf_a = a
    out_b, grads_b, xg_b, buf_b = b
    assert torch.equal(out_a, out_b)
    assert torch.equal(xg_a, xg_b)
    assert grads_a.keys() == grads_b.keys() and buf_a.keys() == buf_b.keys()
    for k in grads_a:
        assert torch.equal(grads_a[k], grads_b[k]), k
    for k in buf_a:  # batch-norm running statistics updated once, not again by recomputation
        assert torch.equal(buf_a[k], buf_b[k]), k


@pytest.mark.slow
def test_sew_resnet_gradients_bit_identical() -> None:
    torch.manual_seed(0)
    model = create_model("sew_resnet18", num_classes=5, stem="small", width=0.125, in_channels=2)
    snn.set_backend(model, "torch")  # no kernel compilation in a test of the bookkeeping
    x = (torch.rand(3, 2, 2, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    reference = copy.deepcopy(model)
    keys = list(model.state_dict())
    memory_efficient(model)
    assert list(model.state_dict()) == keys  # no renamed parameters
    _assert_same(_run(reference, x), _run(model, x))
    plain(model)
    assert "forward" not in vars(model.stages)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        snn.TimeDistributed(nn.Linear(8, 16)),
        snn.LIF(),
        snn.TimeDistributed(nn.Linear(16, 16)),
        snn.ALIF(),
        snn.TimeDistributed(nn.Linear(16, 4)),
        snn.LI(),
    )


def test_compressed_checkpoint_of_mlp_bit_identical() -> None:
    x = (torch.rand(8, 3, 8, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    model = _mlp()
    reference = copy.deepcopy(model)
    _assert_same(_run(reference, x), _run(memory_efficient(model), x))


def test_time_chunks_match_plain_path() -> None:
    x = (torch.rand(8, 3, 8, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    model = _mlp()
    reference = copy.deepcopy(model)
    out_a, grads_a, xg_a, _ = _run(reference, x)
    out_b, grads_b, xg_b, _ = _run(memory_efficient(model, chunks=4), x)
    # outputs and the input gradient are computed step by step: identical
    assert torch.equal(out_a, out_b) and torch.equal(xg_a, xg_b)
    # weight gradients are sums over time steps, accumulated chunk by chunk: the same terms,
    # summed in another order (float32 rounding only)
    for k in grads_a:
        torch.testing.assert_close(grads_b[k], grads_a[k], rtol=1e-6, atol=1e-5, msg=k)


def test_time_chunks_refuse_batch_norm_naming_layer() -> None:
    model = create_model("sew_resnet18", num_classes=5, stem="small", width=0.125, in_channels=2)
    memory_efficient(model, chunks=2)
    with pytest.raises(ValueError, match=r"stem\.0\.1.*BatchNorm2d"):
        model(torch.zeros(4, 1, 2, 8, 8))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="chunks"):
        memory_efficient(_mlp(), chunks=0)
    with pytest.raises(ValueError, match="no spiking neuron"):
        memory_efficient(nn.Sequential(nn.Linear(2, 2)))
    model = memory_efficient(_mlp(), chunks=4)
    with pytest.raises(ValueError, match="T >= chunks"):
        model(torch.zeros(2, 1, 8))


def test_evaluation_without_grad_runs_plain_path() -> None:
    x = (torch.rand(8, 3, 8, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    model = _mlp()
    reference = copy.deepcopy(model)
    with torch.no_grad():
        snn.reset(reference)
        expected = reference(x)
        snn.reset(memory_efficient(model))
        assert torch.equal(model(x), expected)
