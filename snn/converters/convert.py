"""``convert``: ANN to SNN through the pass pipeline."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from torch import nn

from snn.converters.data import input_batches
from snn.converters.network import ConvertedSNN
from snn.converters.passes import (
    ConversionConfig,
    ConversionContext,
    ConversionPass,
    default_passes,
)
from snn.converters.report import ConversionReport

__all__ = ["convert"]


def convert(
    model: nn.Module,
    calibration_data: Any,
    *,
    method: str = "percentile",
    percentile: float = 99.9,
    channelwise: bool = False,
    v_init: float = 0.5,
    steps: int = 32,
    encoding: str = "direct",
    calibration: str | None = None,
    calibration_steps: int | None = None,
    time_chunk: int = 8,
    nonlinear: str | None = "expectation",
    signed_levels: int = 4,
    passes: Sequence[ConversionPass] | None = None,
) -> tuple[ConvertedSNN, ConversionReport]:
    """Convert a trained ANN into a spiking network of IF neurons (reset by subtraction).

    The model is traced with ``torch.fx`` (a copy; the model itself is left untouched) and goes
    through :func:`~snn.converters.passes.default_passes`: trace, check that every operation has
    a spiking counterpart, fold BatchNorm into the preceding Conv/Linear, remove Dropout and
    identities, mark the activations, collect their statistics on ``calibration_data``, set the
    thresholds, replace activations by IF neurons and max pooling by
    :class:`~snn.converters.SpikingMaxPool`, add the readout and optionally calibrate.

    Activations whose ANN was trained with :class:`~snn.converters.QCFS` keep their trained
    threshold and start at the QCFS shift (half the threshold); ``method`` applies to the rest.

    Args:
        model: the ANN; a single tensor in, a single tensor out. Supported operations are listed
            in :mod:`snn.converters.graph`; others raise
            :class:`~snn.converters.UnsupportedOperationError`.
        calibration_data: inputs for the activation statistics: a tensor ``[N, ...]``, an
            ``(inputs, labels)`` pair, or an iterable (DataLoader) of batches.
        method: ``"percentile"`` (default; ``"robust"`` is the same), or ``"max"``.
        percentile: the percentile of the positive activations used as the threshold.
        channelwise: one threshold per channel instead of per layer.
        v_init: initial membrane potential of ReLU neurons as a fraction of the threshold
            (0.5 rounds instead of truncating the rate; 0 is the classic choice).
        steps: default number of time steps of the returned network.
        encoding: ``"direct"`` (analog input current, default) or ``"poisson"``.
        calibration: post-conversion calibration, ``None``, ``"bias"`` or ``"membrane"`` (see
            :func:`~snn.converters.calibrate`).
        calibration_steps: time steps the calibration is made for (default ``steps``).
        time_chunk: steps simulated per graph call.
        nonlinear: ``"expectation"`` (default): LayerNorm, GELU, SiLU, softmax, sigmoid, tanh
            and products of two activations (attention) are converted by expectation
            compensation with signed multi-threshold neurons (Huang et al., ACM MM 2024; see
            :mod:`snn.converters.expectation`); ``None`` refuses them.
        signed_levels: threshold pairs of the signed neurons (1: plain signed IF neurons).
        passes: a custom pipeline (default :func:`~snn.converters.passes.default_passes`).

    Returns:
        ``(snn_model, report)``: the :class:`~snn.converters.ConvertedSNN` and the
        :class:`~snn.converters.ConversionReport` of what happened to each layer.

    Raises:
        UnsupportedOperationError: for an operation with no spiking counterpart.
        ConversionError: for inconsistent models or options.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if calibration not in (None, "bias", "membrane"):
        raise ValueError(f"calibration must be None, 'bias' or 'membrane', got {calibration!r}")
    config = ConversionConfig(method=method, percentile=percentile, channelwise=channelwise,
                              v_init=v_init, steps=steps, encoding=encoding,
                              time_chunk=time_chunk, calibration=calibration,
                              calibration_steps=calibration_steps, nonlinear=nonlinear,
                              signed_levels=signed_levels)
    ctx = ConversionContext(model=model, calibration=input_batches(calibration_data),
                            config=config)
    ctx.report.options = {"method": method, "percentile": percentile, "channelwise": channelwise,
                          "v_init": v_init, "encoding": encoding, "calibration": calibration,
                          "nonlinear": nonlinear, "signed_levels": signed_levels}
    device = next((p.device for p in model.parameters()), None)
    if device is not None:
        ctx.calibration = [b.to(device) for b in ctx.calibration]
    for p in default_passes() if passes is None else passes:
        start = time.perf_counter()
        p.run(ctx)
        ctx.report.passes.append((p.name, time.perf_counter() - start))
    if not isinstance(ctx.network, ConvertedSNN):
        raise ValueError("the pipeline did not build a network (is 'build_network' missing?)")
    return ctx.network, ctx.report
