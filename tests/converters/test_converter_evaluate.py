"""evaluate() reads every T out of one run; calibrate() reduces the layer-wise error."""

from __future__ import annotations

import pytest
import torch
from converter_models import FunctionalNet
from torch import nn

from snn.converters import calibrate, convert, evaluate


def _data(n: int = 40):
    torch.manual_seed(0)
    model = FunctionalNet().eval()
    x = torch.rand(n, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[::4] = (y[::4] + 1) % 4  # some ANN errors, so accuracy and agreement differ
    return model, x, y


def test_evaluate_matches_separate_runs() -> None:
    model, x, y = _data()
    net, _ = convert(model, x)
    ts = [1, 3, 8, 20]
    res = evaluate(model, net, (x, y), timesteps=ts, batch_size=16)
    with torch.no_grad():
        ann_pred = model(x).argmax(1)
        assert res.ann_accuracy == pytest.approx(float((ann_pred == y).float().mean()))
        assert res.analog_accuracy == pytest.approx(
            float((net.analog(x).argmax(1) == y).float().mean()))
        for t in ts:
            pred = net(x, steps=t).argmax(1)  # a separate run of t steps
            assert res.snn_accuracy[t] == pytest.approx(float((pred == y).float().mean()))
            assert res.agreement[t] == pytest.approx(float((pred == ann_pred).float().mean()))
    assert res.samples == len(y) and res.timesteps == ts
    assert set(res.firing_rates) == set(net.neurons())
    assert "T" in res.table() and res.to_dict()["snn_accuracy"][20] == res.snn_accuracy[20]


def test_evaluate_firing_rates_match_counted_spikes() -> None:
    model, x, y = _data(12)
    net, _ = convert(model, x)
    res = evaluate(model, net, [(x[:5], y[:5]), (x[5:], y[5:])], timesteps=[2, 6])
    name, layer = next(iter(net.neurons().items()))
    spikes = []
    h = layer.neuron.register_forward_hook(lambda m, i, o: spikes.append(o))
    with torch.no_grad():
        net.simulate(x, 6)
    h.remove()
    s = torch.cat(spikes, 0)  # [6, B, ...]
    for t in (2, 6):
        assert res.firing_rates[name][t] == pytest.approx(float(s[:t].mean()), rel=1e-6)


def test_evaluate_rejects_bad_arguments() -> None:
    model, x, y = _data(8)
    net, _ = convert(model, x)
    with pytest.raises(ValueError, match="timesteps"):
        evaluate(model, net, (x, y), timesteps=[0, 4])
    with pytest.raises(TypeError, match="ConvertedSNN"):
        evaluate(model, model, (x, y))
    with pytest.raises(TypeError, match="batches"):
        evaluate(model, net, [x])


def _layer_errors(net, x: torch.Tensor, steps: int) -> list[float]:
    """Mean absolute per-channel error of each layer's mean output against the analog one."""
    from snn.converters.calibration import _mean_outputs, _ordered_neurons

    target = _mean_outputs(net, None, [x], None)
    snn_out = _mean_outputs(net, None, [x], steps)
    return [float((target[id(m)] - snn_out[id(m)]).abs().mean() / m.threshold.mean())
            for m in _ordered_neurons(net)]


@pytest.mark.parametrize("mode", ["bias", "membrane"])
def test_calibration_reduces_layer_errors(mode: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 64, 16), nn.ReLU(), nn.Linear(16, 4))
    x = torch.rand(64, 1, 8, 8)
    steps = 4
    net, _ = convert(model, x, v_init=0.0)
    before = _layer_errors(net, x, steps)
    calibrate(net, x, steps=steps, mode=mode)
    after = _layer_errors(net, x, steps)
    assert sum(after) < 0.5 * sum(before), (before, after)
    buffers = [m.bias if mode == "bias" else m.v_init for m in net.neurons().values()]
    assert any(float(b.abs().sum()) > 0 for b in buffers)


def test_calibration_through_convert_option_and_errors() -> None:
    model, x, _ = _data(16)
    net, report = convert(model, x, calibration="membrane", calibration_steps=4)
    assert [p for p, _ in report.passes][-1] == "calibrate"
    assert any(float(m.v_init.std()) > 0 for m in net.neurons().values())
    with pytest.raises(ValueError, match="mode"):
        calibrate(net, x, steps=4, mode="weights")
    with pytest.raises(ValueError, match="steps"):
        calibrate(net, x, steps=0)
