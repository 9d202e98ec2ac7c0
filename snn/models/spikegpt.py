r"""SpikeGPT-style character language model: embedding, spiking RWKV blocks, readout.

Reference:
    R.-J. Zhu, Q. Zhao, G. Li, J. K. Eshraghian, "SpikeGPT: Generative Pre-trained Language
    Model with Spiking Neural Networks", arXiv:2302.13939, 2023.

Language models take token indices, not spike tensors, so they live in their own registry
(:data:`LANGUAGE_MODELS`), apart from the classifiers of :data:`snn.models.MODELS`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from snn.layers.rwkv import SpikingRWKVBlock
from snn.neurons.utils import reset, set_step_mode

__all__ = [
    "LANGUAGE_MODELS",
    "SPIKEGPT_216M_PARAMETERS",
    "SpikeGPT",
    "generate",
    "spikegpt_216m",
    "spikegpt_tiny",
]


class SpikeGPT(nn.Module):
    r"""Token embedding, ``num_layers`` :class:`~snn.layers.SpikingRWKVBlock` and a linear head
    after a final layer norm.

    Input token indices ``[T, B]`` (tokens first, the sequence axis is time), output logits
    ``[T, B, vocab_size]``: the logits at ``t`` predict token ``t + 1`` and depend on tokens
    ``<= t`` only. In single-step mode (:func:`snn.set_step_mode`) the input is one token per
    sequence ``[B]`` and the output ``[B, vocab_size]``, continuing from the previous call.

    Readings taken: SpikeGPT's blocks feed the residual stream spikes of their sub-blocks (see
    :class:`~snn.layers.SpikingRWKVBlock`); the embedding and the head stay real-valued, as in its
    released model (the paper's binary embedding variant is not built). ``spiking=False`` gives
    the non-spiking RWKV model of the same size.

    Args:
        vocab_size: number of tokens.
        dim: model width.
        num_layers: number of blocks.
        hidden: channel-mix hidden width (default ``4 * dim``).
        spiking: spiking neurons after each sub-block (``False``: plain RWKV).
        neuron: registry name of the neurons.
        neuron_kwargs: their options.
    """

    folded_functions = MappingProxyType(dict.fromkeys(
        ("min", "max", "lt", "ge"),
        "the check that the token indices lie in the vocabulary (input validation, no network "
        "arithmetic)",
    ))
    """For :class:`snn.energy.OpCounter`: the functions of :meth:`forward` that are not work of
    the network."""

    def __init__(
        self,
        vocab_size: int,
        dim: int = 128,
        num_layers: int = 2,
        *,
        hidden: int | None = None,
        spiking: bool = True,
        neuron: str = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
            raise ValueError(f"vocab_size of SpikeGPT must be a positive integer, got "
                             f"{vocab_size!r}")
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers of SpikeGPT must be a positive integer, got "
                             f"{num_layers!r}")
        self.vocab_size = vocab_size
        self.emb = nn.Embedding(vocab_size, dim)
        self.blocks = nn.Sequential(*[
            SpikingRWKVBlock(dim, i, num_layers, hidden=hidden, spiking=spiking, neuron=neuron,
                             neuron_kwargs=neuron_kwargs)
            for i in range(num_layers)
        ])
        self.ln_out = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size, bias=False)

    @property
    def step_mode(self) -> str:
        """``"sequence"`` or ``"single"``."""
        return self.blocks[0].step_mode

    def forward(self, tokens: Tensor) -> Tensor:
        """``[T, B]`` token indices -> ``[T, B, vocab_size]`` logits (``[B] -> [B, vocab]`` in
        single-step mode)."""
        want = 1 if self.step_mode == "single" else 2
        if not isinstance(tokens, Tensor) or tokens.dtype != torch.long or tokens.dim() != want:
            shape = "[B]" if want == 1 else "[T, B]"
            got = (f"{tuple(tokens.shape)} {tokens.dtype}" if isinstance(tokens, Tensor)
                   else type(tokens).__name__)
            raise ValueError(f"SpikeGPT ({self.step_mode} mode) expects int64 token indices "
                             f"{shape}, got {got}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(f"SpikeGPT token indices must lie in [0, {self.vocab_size})")
        return self.head(self.ln_out(self.blocks(self.emb(tokens))))


@torch.no_grad()
def generate(
    model: SpikeGPT,
    prompt: Tensor,
    length: int,
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample ``length`` tokens after ``prompt`` (``[T0, B]`` indices), token by token in
    single-step mode; the model is reset before and after and left in sequence mode.

    Args:
        model: the language model.
        prompt: at least one token per sequence, ``[T0, B]``.
        length: tokens to sample.
        temperature: softmax temperature (``0``: greedy).
        generator: random generator for reproducible samples.

    Returns:
        The sampled tokens ``[length, B]``.
    """
    if prompt.dim() != 2 or prompt.shape[0] < 1:
        raise ValueError(f"prompt must be token indices [T0 >= 1, B], got {tuple(prompt.shape)}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    set_step_mode(model, "single")
    try:
        for tok in prompt[:-1]:
            model(tok)
        tok, out = prompt[-1], []
        for _ in range(length):
            logits = model(tok)
            if temperature == 0:
                tok = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                tok = torch.multinomial(probs, 1, generator=generator)[:, 0]
            out.append(tok)
    finally:
        set_step_mode(model, "sequence")
        reset(model)
    return torch.stack(out) if out else prompt.new_zeros(0, prompt.shape[1])


def spikegpt_tiny(vocab_size: int = 98, **kwargs: Any) -> SpikeGPT:
    """A small SpikeGPT for character-level text (width 128, 2 blocks)."""
    return SpikeGPT(vocab_size, **{"dim": 128, "num_layers": 2, **kwargs})


SPIKEGPT_216M_PARAMETERS = 215_399_424
"""Parameters of :func:`spikegpt_216m` (the paper: 216M)."""


def spikegpt_216m(vocab_size: int = 50277, **kwargs: Any) -> SpikeGPT:
    """SpikeGPT-216M, the paper's larger model (pre-trained on OpenWebText2): 18 blocks of width
    768, channel-mix width ``4 * 768``, over the 50,277 tokens of the GPT-NeoX-20B tokenizer.

    It has 215,399,424 parameters (:data:`SPIKEGPT_216M_PARAMETERS`), which the paper (Zhu et
    al., arXiv:2302.13939, TMLR 2024) gives as 216M. Readings taken, since the reachable text of
    the paper gives the count and not the shape: depth, width and vocabulary are those of the
    authors' released ``SpikeGPT-216M`` (``run.py`` of ridgerchu/SpikeGPT: ``n_layer = 18``,
    ``n_embd = 768``, ``vocab_size = 50277``); the input embedding and the output head are
    separate matrices (not tied), and the first block has the extra input layer norm, as in
    their ``GPT`` class; the released code's optional "copy" attention head is off there
    (``RWKV_HEAD_QK_DIM = 0``) and is not built. The 0.28% between 215.4M and the printed
    216M is not accounted for by any option of that code (a padded vocabulary of 50,304 would
    add 41,472). Keyword arguments override the configuration (e.g. a smaller ``dim`` for
    tests).
    """
    return SpikeGPT(vocab_size, **{"dim": 768, "num_layers": 18, **kwargs})


LANGUAGE_MODELS: dict[str, Callable[..., nn.Module]] = {
    "spikegpt_tiny": spikegpt_tiny,
    "spikegpt_216m": spikegpt_216m,
}
"""Language-model builders by name; each takes ``vocab_size`` and returns an untrained model."""
