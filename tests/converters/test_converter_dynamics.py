"""Spiking dynamics of the converted layers: IF rates, spiking max pooling, QCFS, convergence."""

from __future__ import annotations

import torch
from torch import nn

from snn.converters import QCFS, IFActivation, SpikingMaxPool, convert, qcfs


def _per_layer_outputs(net, x: torch.Tensor, steps: int | None) -> dict[str, torch.Tensor]:
    """Mean output over time of every IF layer (``steps=None``: the analog activation)."""
    outs: dict[str, torch.Tensor] = {}
    handles = []
    for name, layer in net.neurons().items():
        def hook(_m, _inp, out, name=name):
            if steps is None:
                outs[name] = out
            else:
                outs[name] = out.unflatten(0, (steps, -1)).mean(0)
        handles.append(layer.register_forward_hook(hook))
    net.time_chunk = steps or 1
    with torch.no_grad():
        net.analog(x) if steps is None else net.simulate(x, steps)
    for h in handles:
        h.remove()
    return outs


def test_if_layer_golden_rate() -> None:
    # constant input x, threshold 1, v0 = 0.5: count after T steps = floor(0.5 + T x)
    layer = IFActivation(torch.tensor(1.0), (3,), v_init=0.5)
    x = torch.tensor([[0.3, 0.75, -0.2]])
    steps = 4
    out = layer(x.expand(steps, 1, 3).reshape(steps, 3), steps)
    assert out.tolist() == [[0, 1, 0], [1, 1, 0], [0, 0, 0], [0, 1, 0]]
    # threshold 2: amplitude 2, same spike times for input scaled by 2
    layer2 = IFActivation(torch.tensor(2.0), (3,), v_init=1.0)
    out2 = layer2((2 * x).expand(steps, 1, 3).reshape(steps, 3), steps)
    torch.testing.assert_close(out2, 2 * out)


def test_first_layer_rate_error_is_bounded_by_half_threshold_over_t() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 50), nn.ReLU(), nn.Linear(50, 3))
    x = torch.randn(64, 10)
    net, _ = convert(model, x, method="percentile")
    (name,) = net.neurons()
    theta = float(net.neurons()[name].threshold)
    analog = _per_layer_outputs(net, x, None)[name]
    for steps in (1, 3, 8, 32, 100):
        rate = _per_layer_outputs(net, x, steps)[name]
        err = float((rate - analog).abs().max())
        assert err <= theta / (2 * steps) + 1e-5, (steps, err, theta)


def test_rates_approach_normalised_activations_in_every_layer() -> None:
    """Measured error of every layer's mean output against the normalised ANN activation,
    in units of the layer's threshold, shrinks as T grows and stays under 1.5 / T · depth."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(8 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 4),
    )
    x = torch.rand(32, 1, 8, 8)
    net, _ = convert(model, x)
    analog = _per_layer_outputs(net, x, None)
    thresholds = {n: m.threshold for n, m in net.neurons().items()}
    errors = {}
    for steps in (8, 32, 128):
        rates = _per_layer_outputs(net, x, steps)
        errors[steps] = [float(((rates[n] - analog[n]).abs() / thresholds[n]).mean())
                         for n in analog]
    for depth, name in enumerate(analog, start=1):
        e = [errors[t][depth - 1] for t in (8, 32, 128)]
        assert e[0] > e[1] > e[2], (name, e)
        for t, err in zip((8, 32, 128), e):
            assert err <= 1.5 * depth / t, (name, t, err)


def test_spiking_max_pool_golden() -> None:
    # one window of two inputs; spike trains (amplitude 1)
    a = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0.0])
    b = torch.tensor([0, 1, 1, 0, 1, 1, 1, 1.0])
    x = torch.stack([a, b], -1).reshape(8, 1, 1, 2)  # [T*B, C, H=1, W=2]
    pool = SpikingMaxPool(nn.MaxPool2d((1, 2)))
    out = pool(x, 8).reshape(-1)
    # running counts: a 1,1,2,3,3,3,4,4  b 0,1,2,2,3,4,5,6 -> max 1,1,2,3,3,4,5,6
    assert out.tolist() == [1, 0, 1, 1, 0, 1, 1, 1]
    # chunked call continues from the state
    pool.reset_state()
    first = pool(x[:3], 3)
    second = pool(x[3:], 5)
    assert torch.cat([first, second]).reshape(-1).tolist() == out.tolist()
    # mean output equals the max of the mean inputs
    assert float(out.mean()) == max(float(a.mean()), float(b.mean()))
    # analog mode is the plain max pool
    assert pool(torch.tensor([[[[0.25, 0.75]]]])).item() == 0.75


def test_spiking_max_pool_output_is_spikes_and_tracks_max_rate() -> None:
    torch.manual_seed(0)
    steps = 50
    spikes = (torch.rand(steps, 3, 4, 6, 6) < torch.rand(1, 3, 4, 6, 6)).float() * 0.5
    pool = SpikingMaxPool(nn.MaxPool2d(2))
    out = pool(spikes.flatten(0, 1), steps).unflatten(0, (steps, -1))
    assert set(out.unique().tolist()) <= {0.0, 0.5}
    torch.testing.assert_close(out.sum(0), nn.functional.max_pool2d(spikes.sum(0), 2))


def test_qcfs_function_values_and_gradients() -> None:
    x = torch.tensor([-1.0, 0.0, 0.1, 0.26, 0.5, 0.9, 1.2], requires_grad=True)
    th = torch.tensor(1.0, requires_grad=True)
    y = qcfs(x, th, levels=4, shift=0.5)
    # floor(4x + 0.5) / 4 clipped to [0, 1]
    assert y.tolist() == [0.0, 0.0, 0.0, 0.25, 0.5, 1.0, 1.0]
    y.sum().backward()
    assert x.grad is not None and th.grad is not None
    assert torch.isfinite(x.grad).all() and float(th.grad) != 0.0
    m = QCFS(levels=8, threshold=2.0)
    assert isinstance(m.threshold, nn.Parameter)


def test_qcfs_layer_is_exact_at_t_equal_levels() -> None:
    """IF with threshold lambda and v0 = lambda/2 over T = L steps reproduces QCFS exactly."""
    torch.manual_seed(0)
    q = QCFS(levels=8, threshold=1.75)
    model = nn.Sequential(nn.Linear(6, 40), q, nn.Linear(40, 3))
    x = torch.randn(64, 6)
    net, report = convert(model, x)
    (name, layer) = next(iter(net.neurons().items()))
    assert float(layer.threshold) == 1.75 and layer.v_init.unique().tolist() == [0.875]
    assert report.layer(name).action.startswith("IF neuron (QCFS")
    with torch.no_grad():
        analog = q(model[0](x))
        rate = _per_layer_outputs(net, x, 8)[name]
    torch.testing.assert_close(rate, analog, atol=1e-5, rtol=0)
    torch.testing.assert_close(net(x, steps=8), model(x), atol=1e-4, rtol=1e-4)
