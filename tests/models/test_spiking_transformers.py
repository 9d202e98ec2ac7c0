"""Spiking transformers: parameter counts of the published configurations against the
papers' tables, and the blocks' structure."""

from __future__ import annotations

import pytest
import torch

import snn
from snn.models import (
    count_parameters,
    qkformer_imagenet,
    sdt_imagenet,
    spikformer_cifar10,
    spikformer_imagenet,
)
from snn.neurons import IF

# (builder, options, millions of parameters in the paper's table, where)
PUBLISHED = {
    "spikformer-4-384-cifar10": (spikformer_cifar10, {}, 9.32, "Spikformer, ICLR 2023, Tab. 2"),
    "spikformer-8-384": (spikformer_imagenet, {}, 16.81, "Spikformer, ICLR 2023, Tab. 1"),
    "spikformer-8-512": (spikformer_imagenet, {"embed_dim": 512, "num_heads": 8}, 29.68,
                         "Spikformer, ICLR 2023, Tab. 1"),
    "spikformer-8-768": (spikformer_imagenet, {"embed_dim": 768}, 66.34,
                         "Spikformer, ICLR 2023, Tab. 1"),
    "sdt-8-384": (sdt_imagenet, {}, 16.81, "Spike-driven Transformer, NeurIPS 2023, Tab. 2"),
    "sdt-6-512": (sdt_imagenet, {"embed_dim": 512, "depth": 6}, 23.37,
                  "Spike-driven Transformer, NeurIPS 2023, Tab. 2"),
    "sdt-8-512": (sdt_imagenet, {"embed_dim": 512}, 29.68,
                  "Spike-driven Transformer, NeurIPS 2023, Tab. 2"),
    "sdt-10-512": (sdt_imagenet, {"embed_dim": 512, "depth": 10}, 36.01,
                   "Spike-driven Transformer, NeurIPS 2023, Tab. 2"),
    "sdt-8-768": (sdt_imagenet, {"embed_dim": 768}, 66.34,
                  "Spike-driven Transformer, NeurIPS 2023, Tab. 2"),
    "qkformer-10-384": (qkformer_imagenet, {}, 16.47, "QKFormer, NeurIPS 2024, Tab. 1"),
    "qkformer-10-512": (qkformer_imagenet, {"embed_dim": 512, "num_heads": (8, 8, 8)}, 29.08,
                        "QKFormer, NeurIPS 2024, Tab. 1"),
    "qkformer-10-768": (qkformer_imagenet, {"embed_dim": 768, "num_heads": (12, 12, 12)},
                        64.96, "QKFormer, NeurIPS 2024, Tab. 1"),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_equals_the_papers_table(name: str) -> None:
    builder, options, millions, _ = PUBLISHED[name]
    with torch.device("meta"):  # no memory, no initialisation: counts only
        count = count_parameters(builder(**options))
    # the tables print two decimals, some rounded and some truncated: the exact count must
    # lie within one unit of the last printed digit
    assert abs(count / 1e6 - millions) < 0.01, f"{name}: {count} vs {millions}M"


def test_spikformer_cifar10_exact_count_and_spikingjelly_difference() -> None:
    # the authors' CIFAR code has biases in every token projection; SpikingJelly's port drops
    # them (its 9,310,906 parameters): 4 blocks x (4 x 384 + 1536 + 384) = 13,824 fewer
    with torch.device("meta"):
        assert count_parameters(spikformer_cifar10()) == 9_324_730
        assert count_parameters(spikformer_cifar10(qkv_bias=False)) == 9_324_730 - 4 * 3 * 384


def test_models_forward_on_cifar_sized_input_and_reset() -> None:
    torch.manual_seed(0)
    model = spikformer_cifar10(embed_dim=32, num_heads=2, depth=2)  # batch statistics
    x = torch.rand(2, 2, 3, 16, 16)
    with torch.no_grad():
        a = model(x)
        b = model(x)
        snn.reset(model)
        c = model(x)
    assert a.shape == (2, 2, 10) and a.abs().sum() > 0
    assert torch.equal(a, c) and not torch.equal(a, b)  # state carries over until reset


def test_neuron_class_reaches_every_neuron_of_a_model() -> None:
    model = qkformer_imagenet(embed_dim=32, num_heads=(1, 2, 2), depths=(1, 1, 1),
                              num_classes=10, neuron=IF)
    kinds = {type(m) for _, m in snn.neurons.neurons_of(model)}
    assert kinds == {IF}
    assert model(torch.rand(2, 1, 3, 32, 32)).shape == (2, 1, 10)


def test_bad_input_names_the_model() -> None:
    with pytest.raises(ValueError, match=r"Spikformer.*T, B, 3, H, W"):
        spikformer_cifar10(embed_dim=32, num_heads=2, depth=1)(torch.rand(2, 3, 32, 32))
