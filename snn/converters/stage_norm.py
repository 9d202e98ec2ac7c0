r"""Batch normalisation during a fine-tuning stage, folded back into the weights after it.

A converted network has its BatchNorms folded into the Conv/Linear layers, so fine-tuning it
trains the folded weights without the normalisation that made the ANN easy to train. For one
stage of :func:`snn.converters.finetune.finetune` at :math:`T` steps, :func:`insert_norms` puts
a per-channel batch normalisation back between every Conv/Linear layer and the IF neuron it
feeds, initialised to be exactly the identity at inference: its running mean and variance are
measured on the training data at :math:`T` steps (time folded into the batch, as the
threshold-dependent batch normalisation of Zheng et al., "Going Deeper With Directly-Trained
Larger Spiking Neural Networks", AAAI 2021, normalises over time and batch together) and its
affine parameters are set to undo them, :math:`\gamma = \sqrt{\sigma^2 + \epsilon}`,
:math:`\beta = \mu`. During training it normalises with the statistics of each batch (Ioffe
and Szegedy, "Batch Normalization", ICML 2015) and keeps running averages; after the stage,
:func:`fold_norms` folds the inference form into the layer before it, exactly as the converter
folds the ANN's BatchNorms, and removes it, so the network between stages is a plain converted
network with the same structure as before. Re-inserting the normalisation at the next stage
re-estimates its statistics at the new number of steps.

A neuron whose input is not a Conv/Linear layer used only there (a residual sum, a pooling) gets
no normalisation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, fx, nn

from snn.converters.data import input_batches
from snn.converters.modules import IFActivation
from snn.converters.network import ConvertedSNN
from snn.converters.passes import folded_affine

__all__ = ["StageNorm", "fold_norms", "insert_norms"]

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class StageNorm(nn.Module):
    """Per-channel batch normalisation of a Conv/Linear output with time folded into the batch.

    Args:
        channels: number of channels (output channels of the layer before).
        dim: the channel dimension of the layer's output (1 for a Conv, -1 for a Linear).
        eps: added to the variance.
        momentum: weight of a new batch in the running statistics.

    While ``measuring`` is set it passes its input through unchanged and accumulates the plain
    mean and variance of what it sees (the statistics :func:`insert_norms` initialises from).
    """

    def __init__(self, channels: int, dim: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.measuring = False
        self._sums: list[Tensor] = []

    def _shape(self, x: Tensor) -> list[int]:
        shape = [1] * x.dim()
        shape[self.dim] = -1
        return shape

    def forward(self, x: Tensor) -> Tensor:
        dims = [d for d in range(x.dim()) if d != self.dim % x.dim()]
        if self.measuring:
            with torch.no_grad():
                n = x.numel() // x.shape[self.dim]
                s = torch.stack([x.sum(dims).double(), (x.double() ** 2).sum(dims)])
                self._sums.append(torch.cat([s, torch.full_like(s[:1], n)]))
            return x
        shape = self._shape(x)
        if self.training:
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            with torch.no_grad():
                n = x.numel() // x.shape[self.dim]
                unbiased = var * n / max(n - 1, 1)
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(unbiased.detach(), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight / torch.sqrt(var + self.eps)
        return (x - mean.view(shape)) * scale.view(shape) + self.bias.view(shape)

    def finish_measuring(self) -> None:
        """Set the running statistics from what was measured and make the module the identity
        at inference (:math:`\\gamma = \\sqrt{\\sigma^2+\\epsilon}`, :math:`\\beta = \\mu`)."""
        total = torch.stack(self._sums).sum(0)
        n = total[2]
        mean = total[0] / n
        var = (total[1] / n - mean ** 2).clamp(min=0)
        self.running_mean.copy_(mean.float())
        self.running_var.copy_(var.float())
        with torch.no_grad():
            self.weight.copy_(torch.sqrt(self.running_var + self.eps))
            self.bias.copy_(self.running_mean)
        self.measuring = False
        self._sums = []

    def scale_shift(self) -> tuple[Tensor, Tensor]:
        """The inference form ``x * scale + shift`` per channel, in float64."""
        var = self.running_var.double()
        scale = self.weight.detach().double() / torch.sqrt(var + self.eps)
        return scale, self.bias.detach().double() - self.running_mean.double() * scale


def _sites(gm: fx.GraphModule) -> list[tuple[fx.Node, fx.Node]]:
    """``(layer node, neuron node)`` pairs where a Conv/Linear used only there feeds an IF
    neuron."""
    uses: dict[Any, int] = {}
    for n in gm.graph.nodes:
        if n.op == "call_module":
            uses[n.target] = uses.get(n.target, 0) + 1
    pairs = []
    for n in gm.graph.nodes:
        if n.op != "call_module" or not isinstance(gm.get_submodule(n.target), IFActivation):
            continue
        prev = n.args[0]
        if (isinstance(prev, fx.Node) and prev.op == "call_module"
                and isinstance(gm.get_submodule(prev.target), _LAYERS)
                and len(prev.users) == 1 and uses[prev.target] == 1):
            pairs.append((prev, n))
    return pairs


def insert_norms(net: ConvertedSNN, data: Any, steps: int, batch_size: int = 256
                 ) -> list[StageNorm]:
    """Insert a :class:`StageNorm` between every Conv/Linear layer and the IF neuron it feeds,
    with statistics measured on ``data`` at ``steps`` steps, so that the network's inference
    output is unchanged.

    Args:
        net: a converted network (changed in place).
        data: training inputs (a tensor ``[N, ...]``, an ``(inputs, labels)`` pair or batches).
        steps: the number of time steps of the stage.
        batch_size: batch size of the measuring pass.

    Returns:
        the inserted modules (empty if no neuron has a Conv/Linear input of its own).
    """
    gm = net.graph
    norms = []
    device = next(net.parameters()).device
    for i, (prev, node) in enumerate(_sites(gm)):
        layer = gm.get_submodule(prev.target)
        norm = StageNorm(layer.weight.shape[0], -1 if isinstance(layer, nn.Linear) else 1)
        norm.to(device)
        name = f"stage_norm_{i}"
        while hasattr(gm, name):
            name += "_"
        gm.add_submodule(name, norm)
        with gm.graph.inserting_after(prev):
            new = gm.graph.call_module(name, (prev,))
        node.replace_input_with(prev, new)
        norm.measuring = True
        norms.append(norm)
    gm.graph.lint()
    gm.recompile()
    if norms:
        was_training = net.training
        net.eval()
        with torch.no_grad():
            for xb in input_batches(data, batch_size, "data"):
                net(xb.to(device), steps)
        for norm in norms:
            norm.finish_measuring()
        net.train(was_training)
    return norms


def fold_norms(net: ConvertedSNN) -> int:
    """Fold every :class:`StageNorm` of ``net`` into the Conv/Linear layer before it and remove
    it (exact at inference, computed in float64). Returns how many were folded."""
    gm = net.graph
    folded = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(gm.get_submodule(node.target), StageNorm):
            continue
        norm = gm.get_submodule(node.target)
        prev = node.args[0]
        layer = gm.get_submodule(prev.target)
        w, b = folded_affine(layer, *norm.scale_shift())
        with torch.no_grad():
            layer.weight.copy_(w)
            if layer.bias is None:
                layer.bias = nn.Parameter(b)
            else:
                layer.bias.copy_(b)
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
        delattr(gm, node.target)
        folded += 1
    gm.graph.lint()
    gm.recompile()
    return folded
