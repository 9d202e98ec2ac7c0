"""Post-conversion calibration: correct each layer's mean output error on calibration data.

At few time steps the spike rates of a converted layer are biased against the ANN activations
they stand for (rates are quantised, inputs arrive unevenly in time, errors of earlier layers
add up). Layer by layer in graph order, :func:`calibrate` measures, per channel, the mean of the
ANN activation minus the mean SNN output over ``steps`` steps and removes it, either

- ``"bias"``: as a constant input current added at every step (the bias calibration of Li et
  al., "A free lunch from ANN: towards efficient, accurate spiking neural networks
  calibration", ICML 2021), or
- ``"membrane"``: through the initial membrane potential (an error :math:`e` in the mean output
  over :math:`T` steps is :math:`eT` of charge, the potential calibration of the same work).

Later layers are calibrated on the outputs of the already corrected earlier ones.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from snn.converters.data import input_batches
from snn.converters.modules import IFActivation
from snn.converters.network import ConvertedSNN

__all__ = ["CALIBRATION_MODES", "calibrate"]

CALIBRATION_MODES = ("bias", "membrane")


def _channel_sum(x: Tensor) -> Tensor:
    """Sum over every dimension except 1 (the channel) of ``[N, C, ...]``; all for ``[N]``."""
    if x.dim() < 2:
        return x.sum()
    return x.transpose(0, 1).reshape(x.shape[1], -1).sum(1)


def _ordered_neurons(net: ConvertedSNN) -> list[IFActivation]:
    gm = net.graph
    out = []
    for node in gm.graph.nodes:
        if node.op == "call_module":
            m = gm.get_submodule(node.target)
            if isinstance(m, IFActivation):
                out.append(m)
    return out


def _mean_outputs(net: ConvertedSNN, layer: IFActivation | None, batches: list[Tensor],
                  steps: int | None) -> dict[int, Tensor]:
    """Per-channel mean output of every neuron layer (``layer`` only, if given), in the analog
    network (``steps=None``) or the SNN over ``steps`` steps."""
    layers = _ordered_neurons(net) if layer is None else [layer]
    sums: dict[int, Tensor] = {}
    counts: dict[int, int] = {}
    handles = []
    for m in layers:
        def hook(mod: IFActivation, inputs: tuple[Any, ...], out: Tensor) -> None:
            key = id(mod)
            s = _channel_sum(out.detach().double())
            sums[key] = sums.get(key, 0) + s
            per = out.numel() // (s.numel() if s.dim() else 1)
            counts[key] = counts.get(key, 0) + per
        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            for x in batches:
                if steps is None:
                    net.analog(x)
                else:
                    net.simulate(x, steps)
    finally:
        for h in handles:
            h.remove()
    return {k: (sums[k] / counts[k]) for k in sums}


def calibrate(net: ConvertedSNN, data: Any, steps: int, mode: str = "bias") -> ConvertedSNN:
    """Correct every IF layer of ``net`` so its mean output over ``steps`` steps matches the
    ANN's on ``data``, layer by layer (see the module docstring). Modifies ``net`` in place
    (its :attr:`IFActivation.bias` or :attr:`IFActivation.v_init` buffers) and returns it.

    Args:
        net: a converted network.
        data: calibration inputs (tensor, ``(inputs, labels)`` or an iterable of batches).
        steps: the number of time steps the network will run for.
        mode: ``"bias"`` or ``"membrane"``.

    Raises:
        ValueError: for an unknown mode or bad steps.
    """
    if mode not in CALIBRATION_MODES:
        raise ValueError(f"mode must be one of {CALIBRATION_MODES}, got {mode!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(net, ConvertedSNN):
        raise TypeError(f"net must be a ConvertedSNN, got {type(net).__name__}")
    batches = input_batches(data, what="data")
    device = next((b.device for b in net.buffers()), None)
    if device is not None:
        batches = [b.to(device) for b in batches]
    targets = _mean_outputs(net, None, batches, None)
    for layer in _ordered_neurons(net):
        measured = _mean_outputs(net, layer, batches, steps)[id(layer)]
        error = (targets[id(layer)] - measured).to(layer.bias.dtype)
        error = error.reshape(layer.param_shape) if error.dim() else error.expand(layer.param_shape)
        if mode == "bias":
            layer.bias += error
        else:
            layer.v_init += error * steps
    return net
