"""Neuron state under activation checkpointing: recomputation starts from the state the
forward started from (snn/neurons/recompute.py), for every neuron in the registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as torch_checkpoint

import snn
from snn.neurons import NEURONS, CheckpointStateError, create_neuron
from snn.training.memory import checkpoint as snn_checkpoint


def _block(name: str, features: int = 6) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(snn.TimeDistributed(nn.Linear(features, 8)), create_neuron(name))


def _input(steps: int = 8) -> torch.Tensor:
    return torch.rand(steps, 3, 6, generator=torch.Generator().manual_seed(1)) * 1.5


def _grads(block: nn.Module, run) -> list[torch.Tensor]:
    snn.reset(block)
    block.zero_grad()
    x = _input().requires_grad_()
    y = run(block, x)
    weights = torch.linspace(-1, 2, y.numel()).reshape(y.shape)
    (y * weights).sum().backward()
    return [p.grad.clone() for p in block.parameters()] + [x.grad.clone()]


def _two_chunks(block, x, wrap=lambda f, x: f(x)):
    return torch.cat([wrap(block, x[:4]), wrap(block, x[4:])])


def _assert_equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b)
    for i, (u, v) in enumerate(zip(a, b, strict=True)):
        assert torch.equal(u, v), f"gradient {i} differs by {(u - v).abs().max().item()}"


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_non_reentrant_checkpoint_chunks_match_plain(name: str) -> None:
    block = _block(name)
    plain = _grads(block, _two_chunks)
    ckpt = _grads(
        block,
        lambda b, x: _two_chunks(b, x, lambda f, v: torch_checkpoint(f, v, use_reentrant=False)),
    )
    _assert_equal(plain, ckpt)


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_reentrant_checkpoint_of_whole_sequence_matches_plain(name: str) -> None:
    block = _block(name)
    plain = _grads(block, lambda b, x: b(x))
    ckpt = _grads(block, lambda b, x: torch_checkpoint(b, x, use_reentrant=True))
    _assert_equal(plain, ckpt)


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_reentrant_checkpoint_across_chunks_raises(name: str) -> None:
    # the state carried from the first chunk into the second cannot take a gradient back
    # through reentrant checkpointing; it must fail loudly, not compute wrong gradients
    block = _block(name)
    with pytest.raises(CheckpointStateError, match="reentrant"):
        _grads(
            block,
            lambda b, x: _two_chunks(b, x, lambda f, v: torch_checkpoint(f, v, use_reentrant=True)),
        )


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_snn_checkpoint_matches_plain(name: str) -> None:
    block = _block(name)
    plain = _grads(block, _two_chunks)
    ckpt = _grads(block, lambda b, x: _two_chunks(b, x, snn_checkpoint))
    _assert_equal(plain, ckpt)


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_single_step_mode_under_checkpoint(name: str) -> None:
    torch.manual_seed(0)
    block = nn.Sequential(nn.Linear(6, 8), create_neuron(name, step_mode="single"))

    def steps(b, x, wrap=lambda f, v: f(v)):
        return torch.stack([wrap(b, x[t]) for t in range(x.shape[0])])

    plain = _grads(block, steps)
    ckpt = _grads(
        block, lambda b, x: steps(b, x, lambda f, v: torch_checkpoint(f, v, use_reentrant=False))
    )
    _assert_equal(plain, ckpt)


def test_recomputation_leaves_state_and_traces_alone() -> None:
    block = _block("lif")
    neuron = block[1]
    seen: list[int] = []
    handle = neuron.register_trace_hook(lambda m, v: seen.append(v.shape[0]))
    snn.reset(block)
    x = _input()
    y = _two_chunks(block, x, lambda f, v: torch_checkpoint(f, v, use_reentrant=False))
    end = neuron.state
    y.sum().backward()
    handle.remove()
    assert neuron.state is end  # the backward pass did not move the state
    assert seen == [4, 4]  # trace hooks saw the two forward calls only, not the recomputation


def test_reset_between_forward_and_backward_raises() -> None:
    block = _block("lif")
    snn.reset(block)
    y = _two_chunks(block, _input(), lambda f, v: torch_checkpoint(f, v, use_reentrant=False))
    snn.reset(block)
    with pytest.raises(CheckpointStateError, match="reset"):
        y.sum().backward()


def test_indistinguishable_inputs_from_different_states_raise() -> None:
    block = nn.Sequential(create_neuron("lif"))
    snn.reset(block)
    x = torch.full((2, 1, 4), 0.7, requires_grad=True)
    y = torch.cat([torch_checkpoint(block, x, use_reentrant=False) for _ in range(2)])
    with pytest.raises(CheckpointStateError, match="indistinguishable"):
        (y * torch.arange(y.numel()).reshape(y.shape)).sum().backward()


def test_no_grad_streaming_keeps_a_bounded_number_of_states() -> None:
    from snn.neurons.recompute import MAX_NO_GRAD_RECORDS

    neuron = create_neuron("lif", step_mode="single")
    with torch.no_grad():
        for _ in range(3 * MAX_NO_GRAD_RECORDS):
            neuron(torch.rand(2, 4))
    assert len(vars(neuron)["_start_log"]) == MAX_NO_GRAD_RECORDS
    neuron.eval()
    snn.reset(neuron)
    with torch.no_grad():
        neuron(torch.rand(2, 4))
    assert vars(neuron)["_start_log"] == []  # evaluation records nothing
