"""The SpikeGPT character model: registry, causality, generation, step == sequence."""

from __future__ import annotations

import pytest
import torch

import snn
from snn.models import LANGUAGE_MODELS, SpikeGPT, generate
from snn.models.spikegpt import SPIKEGPT_216M_PARAMETERS

LOW = {"beta": 0.5, "decay_input": True, "reset": "hard", "threshold": 0.1}


@pytest.mark.parametrize("name", sorted(LANGUAGE_MODELS))
def test_registry_builds_language_models(name):
    model = LANGUAGE_MODELS[name](vocab_size=11, dim=16)
    logits = model(torch.randint(0, 11, (7, 2)))
    assert logits.shape == (7, 2, 11) and torch.isfinite(logits).all()


def test_logits_are_causal_and_step_equals_sequence():
    torch.manual_seed(0)
    model = SpikeGPT(13, 16, 2, neuron_kwargs=LOW).double()
    tokens = torch.randint(0, 13, (12, 3))
    with torch.no_grad():
        a = model(tokens)
        snn.reset(model)
        other = tokens.clone()
        other[8:] = (other[8:] + 1) % 13
        b = model(other)
        snn.set_step_mode(model, "single")
        steps = torch.stack([model(t) for t in tokens])
    assert torch.equal(a[:8], b[:8]) and not torch.equal(a[8:], b[8:])
    assert torch.allclose(a, steps, atol=1e-12)


def test_generate_is_reproducible_and_restores_the_model():
    torch.manual_seed(0)
    model = SpikeGPT(9, 8, 1, neuron_kwargs=LOW)
    prompt = torch.tensor([[1, 2], [3, 4]])
    out1 = generate(model, prompt, 6, generator=torch.Generator().manual_seed(5))
    out2 = generate(model, prompt, 6, generator=torch.Generator().manual_seed(5))
    assert out1.shape == (6, 2) and torch.equal(out1, out2)
    assert model.step_mode == "sequence"
    # greedy decoding picks the argmax of the sequence-mode logits of prompt + sampled tokens
    greedy = generate(model, prompt, 3, temperature=0)
    with torch.no_grad():
        logits = model(torch.cat([prompt, greedy[:-1]]))
    assert torch.equal(logits[1:].argmax(-1), greedy)


def test_bad_tokens():
    model = SpikeGPT(5, 8, 1)
    with pytest.raises(ValueError, match=r"int64 token indices \[T, B\]"):
        model(torch.rand(3, 2))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        model(torch.tensor([[5]]))
    with pytest.raises(ValueError, match="vocab_size"):
        SpikeGPT(0)


def _rwkv_parameters(vocab: int, dim: int, layers: int) -> int:
    """SpikeGPT's parameters by hand: embedding and head ``V D`` each; per block the time mix
    (4 ``D x D`` projections, decay, bonus and 3 mixes), the channel mix (``D x 4D``,
    ``4D x D``, ``D x D`` and 2 mixes) and two layer norms; the first block's input layer norm
    and the final one."""
    time_mix = 4 * dim * dim + 5 * dim
    channel_mix = 2 * dim * 4 * dim + dim * dim + 2 * dim
    block = time_mix + channel_mix + 2 * 2 * dim
    return 2 * vocab * dim + layers * block + 2 * dim + 2 * dim


def test_spikegpt_216m_has_the_papers_size():
    with torch.device("meta"):
        model = LANGUAGE_MODELS["spikegpt_216m"]()
    count = sum(p.numel() for p in model.parameters())
    assert len(model.blocks) == 18 and model.emb.weight.shape == (50277, 768)
    assert model.head.weight is not model.emb.weight  # untied, as the released model
    assert count == _rwkv_parameters(50277, 768, 18) == SPIKEGPT_216M_PARAMETERS
    assert abs(count - 216e6) / 216e6 < 0.003  # the paper prints 216M (see the docstring)
