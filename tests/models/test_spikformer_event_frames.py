"""Spikformer on event frames (frames that change every step): with the papers' neuron (input
scaled by ``1 - 1/tau``) the neuron after ``Q K^T V`` is all but silent at initialisation and
little gradient reaches ``W_Q``; without the input scaling (the event-digits recipe,
``benchmarks/recipe_transformer_digits_events.py``) it fires and passes gradient."""

from __future__ import annotations

import torch

import snn
from snn.models import spikformer_cifar10

SMALL = {"in_channels": 2, "num_classes": 10, "embed_dim": 32, "num_heads": 2, "depth": 1,
         "pools": (False, True, True, False)}


def _event_frames(steps: int = 8, batch: int = 16) -> torch.Tensor:
    """Sparse event counts ``[T, B, 2, 17, 17]``, drawn anew at every step."""
    g = torch.Generator().manual_seed(0)
    rate = torch.rand(1, batch, 2, 17, 17, generator=g) * 0.6
    return torch.poisson(rate.expand(steps, -1, -1, -1, -1).contiguous(), generator=g)


def _attention_rate_and_grad(neuron_kwargs: dict | None) -> tuple[float, float]:
    torch.manual_seed(0)
    model = spikformer_cifar10(**SMALL, neuron_kwargs=neuron_kwargs)
    attn = model.blocks[0].attn
    rates: list[float] = []
    attn.attn_neuron.register_forward_hook(lambda m, i, o: rates.append(o.mean().item()))
    snn.reset(model)
    model(_event_frames()).mean(0).logsumexp(-1).sum().backward()
    return rates[0], attn.q[0].weight.grad.abs().sum().item()


def test_attention_neuron_fires_on_event_frames_without_input_scaling() -> None:
    papers_rate, papers_grad = _attention_rate_and_grad(None)
    rate, grad = _attention_rate_and_grad({"decay_input": False})
    assert papers_rate < 1e-3
    assert rate > 0.05
    assert grad > 5 * papers_grad > 0
