"""SNN normalisations (tdBN, TEBN, BNTT, MPBN): the papers' statistics, folds for inference
equal to the unfolded layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snn.layers import TimeDistributed
from snn.layers.norm import (
    MPBNLIF,
    NORMS,
    BatchNormThroughTime,
    PerStepLayer,
    TemporalEffectiveBatchNorm,
    ThresholdDependentBatchNorm,
    fold_norm,
)

T, B, C = 4, 3, 6


def _make(name: str) -> nn.Module:
    cls = NORMS[name]
    if cls in (TemporalEffectiveBatchNorm, BatchNormThroughTime):
        return cls(C, steps=T)
    return cls(C)


def _train_stats(norm: nn.Module, shape=(T, B, C, 5, 5), rounds: int = 3) -> None:
    g = torch.Generator().manual_seed(0)
    norm.train()
    for _ in range(rounds):
        norm(torch.randn(shape, generator=g) * 2 + 0.5)
    with torch.no_grad():
        for p in norm.parameters():
            p.copy_(torch.rand(p.shape, generator=g) + 0.5)
    norm.eval()


@pytest.mark.parametrize("name", sorted(NORMS))
@pytest.mark.parametrize("shape", [(T, B, C), (T, B, C, 7), (T, B, C, 3, 3)])
def test_shapes_and_gradients(name: str, shape: tuple[int, ...]) -> None:
    norm = _make(name)
    x = torch.randn(shape, requires_grad=True)
    y = norm(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in norm.parameters())


@pytest.mark.parametrize("name", sorted(NORMS))
def test_wrong_channels_is_one_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match="channels"):
        _make(name)(torch.randn(T, B, C + 1))


def test_tdbn_uses_time_batch_statistics_and_alpha_vth() -> None:
    norm = ThresholdDependentBatchNorm(C, alpha=0.5, threshold=2.0)
    assert torch.all(norm.weight == 1.0)  # alpha * V_th
    x = torch.randn(T, B, C, 4) * 3 + 2
    y = norm(x)
    xs = x.transpose(0, 2).reshape(C, -1)
    ref = (xs - xs.mean(1, keepdim=True)) / torch.sqrt(xs.var(1, unbiased=False, keepdim=True)
                                                        + 1e-5)
    torch.testing.assert_close(y.transpose(0, 2).reshape(C, -1), ref, rtol=1e-4, atol=1e-5)


def test_tebn_scales_each_step_of_shared_statistics() -> None:
    norm = TemporalEffectiveBatchNorm(C, steps=T)
    with torch.no_grad():
        norm.p.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
    x = torch.randn(T, B, C) * 2 + 1
    y = norm(x)
    flat = x.reshape(-1, C)
    shared = (x - flat.mean(0)) / torch.sqrt(flat.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(y, shared * norm.p.view(-1, 1, 1), rtol=1e-4, atol=1e-5)


def test_bntt_uses_per_step_statistics_and_has_no_shift() -> None:
    norm = BatchNormThroughTime(C, steps=T)
    assert [n for n, _ in norm.named_parameters()] == ["weight"]
    x = torch.randn(T, B, C) * torch.arange(1, T + 1).view(-1, 1, 1) + 3
    y = norm(x)
    for t in range(T):
        ref = (x[t] - x[t].mean(0)) / torch.sqrt(x[t].var(0, unbiased=False) + 1e-5)
        torch.testing.assert_close(y[t], ref, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(norm.running_mean[0], norm.running_mean[-1])


@pytest.mark.parametrize("name", ["tdbn", "tebn", "bntt"])
@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_folded_equals_unfolded(name: str, kind: str) -> None:
    torch.manual_seed(1)
    layer = nn.Conv2d(3, C, 3, padding=1) if kind == "conv" else nn.Linear(5, C)
    shape = (T, B, 3, 6, 6) if kind == "conv" else (T, B, 5)
    norm = _make(name)
    _train_stats(norm, (T, B, C, 6, 6) if kind == "conv" else (T, B, C))
    x = torch.randn(shape)
    with torch.no_grad():
        ref = norm(TimeDistributed(layer)(x))
        folded = fold_norm(layer, norm)
        out = folded(x)
    assert isinstance(folded, PerStepLayer) == (name != "tdbn")
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_fold_rejects_mismatched_channels_and_mpbn() -> None:
    with pytest.raises(ValueError, match="outputs"):
        fold_norm(nn.Linear(3, C + 1), ThresholdDependentBatchNorm(C))
    with pytest.raises(TypeError, match="reparameterize"):
        fold_norm(nn.Linear(3, C), MPBNLIF(C))


@pytest.mark.parametrize("shape", [(8, 16, C), (8, 4, C, 5, 5)])
def test_mpbn_threshold_reparameterisation_is_exact(shape: tuple[int, ...]) -> None:
    torch.manual_seed(2)
    neuron = MPBNLIF(C, beta=0.5, threshold=1.0)
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        neuron(torch.randn(shape, generator=g) + 0.5)
    with torch.no_grad():
        neuron.bn.weight.copy_(torch.rand(C, generator=g) + 0.5)
        neuron.bn.bias.copy_(torch.randn(C, generator=g) * 0.3)
    neuron.eval()
    x = torch.randn(shape, generator=g) * 1.5 + 0.7
    with torch.no_grad():
        ref = neuron(x)
        neuron.reparameterize()
        out = neuron(x)
    assert neuron.folded and neuron.bn is None
    assert 0 < ref.mean() < 1
    assert torch.equal(out, ref)


def test_mpbn_normalises_the_membrane_before_firing() -> None:
    # one step, training mode: the spike decision uses batch-normalised membranes, so exactly
    # the samples above the batch mean (+ threshold 0 after a -1 shift) fire
    neuron = MPBNLIF(1, threshold=1.0)
    with torch.no_grad():
        neuron.bn.bias.fill_(1.0)
    x = torch.tensor([[[0.0]], [[10.0]], [[20.0]], [[30.0]]]).transpose(0, 1)  # [1, 4, 1]
    assert neuron(x).flatten().tolist() == [0.0, 0.0, 1.0, 1.0]


def test_mpbn_rejects_non_positive_scale() -> None:
    neuron = MPBNLIF(C)
    with torch.no_grad():
        neuron.bn.weight[0] = -1.0
    with pytest.raises(ValueError, match="positive"):
        neuron.reparameterize()
