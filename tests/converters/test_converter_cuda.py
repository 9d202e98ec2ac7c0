"""The converted network runs on a GPU and agrees with the CPU."""

from __future__ import annotations

import pytest
import torch
from converter_models import ResidualNet, randomise_bn

from snn.converters import convert, evaluate


@pytest.mark.cuda
def test_conversion_and_simulation_on_cuda_match_cpu() -> None:
    model = randomise_bn(ResidualNet()).double()
    x = torch.rand(16, 2, 8, 8, dtype=torch.float64)
    net_cpu, _ = convert(model, x, channelwise=True, calibration="bias", calibration_steps=8)
    net_gpu, _ = convert(model.cuda(), x.cuda(), channelwise=True, calibration="bias",
                         calibration_steps=8)
    assert all(b.is_cuda for b in net_gpu.buffers())
    with torch.no_grad():
        out_cpu = net_cpu.simulate(x, 16)
        out_gpu = net_gpu.simulate(x.cuda(), 16)
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=1e-6, atol=1e-6)
    y = out_cpu[-1].argmax(1)
    res = evaluate(model, net_gpu, (x.cuda(), y.cuda()), timesteps=[4, 16])
    assert res.snn_accuracy[16] == 1.0
