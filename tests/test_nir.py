"""NIR export/import: exact mapping, exact round trip, agreement with snnTorch and Norse."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import snn
from snn.functional import lif_sequence
from snn.layers import Monitor, TimeDistributed
from snn.nir import (
    DISCRETISATIONS,
    NIRExportError,
    NIRImportError,
    Recurrent,
    Scale,
    SumPool2d,
    export,
    load,
)

nir = pytest.importorskip("nir")

TD = TimeDistributed


def _init(model: nn.Module, std: float = 0.6, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


def _run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    snn.reset(model)
    with torch.no_grad():
        return model(x)


def _full_model() -> nn.Sequential:
    return nn.Sequential(
        TD(nn.Conv2d(2, 4, 3, padding=1), nn.AvgPool2d(2), nn.Flatten()),
        snn.LIF(0.8, reset="hard"),
        TD(nn.Linear(64, 10)),
        snn.CubaLIF(0.7, 0.9, reset="hard", v_reset=-0.1),
        TD(nn.Linear(10, 8)),
        Recurrent(snn.LIF(0.5, reset="hard", decay_input=True), nn.Linear(8, 8)),
        TD(nn.Linear(8, 6, bias=False)),
        snn.IF(reset="hard", threshold=0.7),
        TD(nn.Linear(6, 3)),
        snn.LI(0.95),
    )


# -- the parameter mapping -------------------------------------------------------------------


def test_mapping_golden_values():
    model = nn.Sequential(
        TD(nn.Linear(2, 3)),
        snn.LIF(0.9, reset="hard", threshold=1.5),
        TD(nn.Linear(3, 3)),
        snn.LIF(0.5, reset="hard", decay_input=True),
        TD(nn.Linear(3, 3)),
        snn.CubaLIF(0.8, 0.6, reset="hard"),
        TD(nn.Linear(3, 3)),
        snn.IF(reset="hard"),
    )
    x = torch.rand(4, 1, 2)
    g = export(model, x, dt=0.5)
    lif, lif_di, cuba, if_ = g.nodes["1"], g.nodes["3"], g.nodes["5"], g.nodes["7"]
    # beta = exp(-dt/tau)  <=>  tau = -dt/ln(beta); R = 1/(1-beta) without decay_input
    np.testing.assert_allclose(lif.tau, np.full(3, -0.5 / math.log(0.9)), rtol=1e-15)
    np.testing.assert_allclose(lif.r, np.full(3, 10.0), rtol=1e-12)
    np.testing.assert_array_equal(lif.v_threshold, np.full(3, 1.5))
    np.testing.assert_array_equal(lif.v_leak, np.zeros(3))
    np.testing.assert_allclose(lif_di.tau, np.full(3, 0.5 / math.log(2)), rtol=1e-15)
    np.testing.assert_array_equal(lif_di.r, np.ones(3))
    np.testing.assert_allclose(cuba.tau_syn, np.full(3, -0.5 / math.log(0.8)), rtol=1e-15)
    np.testing.assert_allclose(cuba.tau_mem, np.full(3, -0.5 / math.log(0.6)), rtol=1e-15)
    np.testing.assert_allclose(cuba.w_in, np.full(3, 5.0), rtol=1e-12)  # 1/(1-alpha)
    np.testing.assert_allclose(cuba.r, np.full(3, 2.5), rtol=1e-12)  # 1/(1-beta)
    np.testing.assert_array_equal(if_.r, np.full(3, 2.0))  # 1/dt
    # forward Euler: tau = dt/(1-beta), the same resistances
    ge = export(model, x, dt=1e-4, discretisation="euler")
    np.testing.assert_allclose(ge.nodes["1"].tau, np.full(3, 1e-3), rtol=1e-12)
    np.testing.assert_allclose(ge.nodes["1"].r, np.full(3, 10.0), rtol=1e-12)
    assert sorted(DISCRETISATIONS) == ["euler", "zoh"]


@pytest.mark.parametrize("disc", sorted(DISCRETISATIONS))
def test_discretisation_inverts(disc):
    d = DISCRETISATIONS[disc]
    for beta in (0.1, 0.5, 0.9, 0.999):
        assert d.decay(np.array(d.tau(beta, 0.3)), 0.3) == pytest.approx(beta, rel=1e-12)


def test_load_derives_decay_and_gain_from_plain_nir():
    """A hand-written graph (no metadata): per-neuron taus, and a resistance that needs a Scale."""
    tau = np.array([-1.0 / math.log(0.5), -1.0 / math.log(0.8)])
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "lif": nir.LIF(
                tau=tau,
                r=np.array([3.0, 7.5]),  # gains (1-beta) r = 1.5
                v_leak=np.zeros(2),
                v_threshold=np.array([1.0, 2.0]),
            ),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("input", "lif"), ("lif", "output")],
        type_check=False,
    )
    with pytest.raises(ValueError, match="time step"):
        load(g)
    model = load(g, dt=1.0, discretisation="zoh")
    x = torch.rand(12, 3, 2) * 2
    beta = torch.tensor([0.5, 0.8])
    expected = lif_sequence(
        1.5 * x, beta=beta, threshold=torch.tensor([1.0, 2.0]), reset="hard"
    ).spikes
    torch.testing.assert_close(_run(model, x), expected)
    assert any(isinstance(m, Scale) for m in model.modules())


# -- round trip ------------------------------------------------------------------------------


@pytest.mark.parametrize("disc", sorted(DISCRETISATIONS))
def test_round_trip_is_exact(tmp_path, disc):
    model = _init(_full_model(), 1.0)
    x = (torch.rand(8, 3, 2, 8, 8) < 0.5).float()
    graph = export(model, x, dt=1e-3, discretisation=disc)
    expected = _run(model, x)
    assert expected.abs().sum() > 0
    with Monitor(model) as mon:
        _run(model, x)
    assert all(rate > 0 for rate in mon.firing_rates().values()), mon.firing_rates()
    loaded = load(graph)
    assert torch.equal(_run(loaded, x), expected)
    path = tmp_path / "model.nir"
    nir.write(str(path), graph)
    from_file = load(path)
    assert torch.equal(_run(from_file, x), expected)
    # the loaded model exports to the same graph
    again = export(from_file, x, dt=1e-3, discretisation=disc)
    assert set(again.nodes) == set(graph.nodes)
    assert sorted(again.edges) == sorted(graph.edges)
    np.testing.assert_array_equal(again.nodes["1"].tau, graph.nodes["1"].tau)
    # single-step mode of the loaded model gives the same result
    snn.set_step_mode(loaded, "single")
    snn.reset(loaded)
    with torch.no_grad():
        steps = torch.stack([loaded(x_t) for x_t in x])
    assert torch.equal(steps, expected)


@pytest.mark.parametrize(
    "neuron",
    [
        snn.LIF(0.9, reset="subtract", surrogate="sigmoid"),
        snn.LIF(0.7, reset="none", decay_input=True, detach_reset=True),
        snn.ParametricLIF(0.6, param_shape=(5,), reset="subtract"),
        snn.CubaLIF(0.6, 0.8, reset="subtract", decay_input=True),
        snn.IF(reset="subtract", threshold=0.5),
    ],
    ids=["lif-sub", "lif-none", "plif", "cuba-sub", "if-sub"],
)
def test_round_trip_keeps_non_nir_options(neuron):
    model = _init(nn.Sequential(TD(nn.Linear(4, 5)), neuron), 0.8)
    x = torch.rand(10, 2, 4)
    with pytest.raises(NIRExportError, match=r"'1'.*reset"):
        export(model, x)
    graph = export(model, x, allow_any_reset=True)
    loaded = load(graph)
    assert torch.equal(_run(loaded, x), _run(model, x))
    got = next(m for m in loaded.modules() if isinstance(m, snn.neurons.SpikingNeuron))
    assert got.reset == neuron.reset
    assert got.surrogate == neuron.surrogate
    assert got.detach_reset == neuron.detach_reset


def test_branches_sum_into_one_node():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = TD(nn.Linear(4, 4))
            self.b = TD(nn.Linear(4, 4))
            self.lif = snn.LIF(0.8, reset="hard")

        def forward(self, x):
            return self.lif(self.a(x) + self.b(x))

    model = _init(Skip())
    x = torch.rand(6, 2, 4)
    graph = export(model, x)
    assert ("a.0", "lif") in graph.edges and ("b.0", "lif") in graph.edges
    assert torch.equal(_run(load(graph), x), _run(model, x))


def test_sum_pool_and_conv1d_round_trip():
    model = _init(
        nn.Sequential(TD(nn.Conv1d(2, 3, 3, stride=2, padding=1)), snn.LIF(0.8, reset="hard"))
    )
    x = torch.rand(5, 2, 2, 9)
    assert torch.equal(_run(load(export(model, x)), x), _run(model, x))
    pool = nn.Sequential(TD(SumPool2d(2)), snn.IF(reset="hard", threshold=2.0))
    xp = (torch.rand(5, 2, 1, 4, 4) < 0.6).float()
    graph = export(pool, xp)
    assert isinstance(graph.nodes["0.0"], nir.SumPool2d)
    assert torch.equal(_run(load(graph), xp), _run(pool, xp))


# -- errors ----------------------------------------------------------------------------------


def test_export_errors_name_the_layer():
    x = torch.rand(4, 2, 3)
    with pytest.raises(NIRExportError, match=r"'1'.*ALIF"):
        export(nn.Sequential(TD(nn.Linear(3, 3)), snn.ALIF(reset="hard")), x)
    with pytest.raises(NIRExportError, match="max pooling"):
        export(nn.Sequential(TD(nn.MaxPool2d(2))), torch.rand(2, 1, 1, 4, 4))
    with pytest.raises(NIRExportError, match="fold batch normalisation"):
        export(nn.Sequential(TD(nn.BatchNorm1d(3)), snn.LIF(reset="hard")), x)
    with pytest.raises(NIRExportError, match=r"SpikeCount|readout"):
        export(nn.Sequential(snn.LIF(reset="hard"), snn.SpikeCount()), x)
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        export(nn.Sequential(snn.LIF(reset="hard")), torch.rand(3))
    with pytest.raises(ValueError, match="unknown discretisation"):
        export(nn.Sequential(snn.LIF(reset="hard")), x, discretisation="rk4")


def test_load_errors_name_the_node():
    leak = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "n": nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.ones(2), v_threshold=np.ones(2)),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("input", "n"), ("n", "output")],
        type_check=False,
    )
    with pytest.raises(NIRImportError, match=r"'n'.*v_leak"):
        load(leak, dt=1.0, discretisation="zoh")
    cycle = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "a": nir.Scale(scale=np.ones(2)),
            "b": nir.Scale(scale=np.ones(2)),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")],
        type_check=False,
    )
    with pytest.raises(NIRImportError, match="cycle"):
        load(cycle, dt=1.0, discretisation="zoh")
    with pytest.raises(FileNotFoundError):
        load("/nonexistent/model.nir")


# -- the recurrent layer ---------------------------------------------------------------------


def test_recurrent_matches_hand_loop_and_resets():
    layer = _init(Recurrent(snn.LIF(0.8, reset="hard"), nn.Linear(4, 4)))
    x = torch.rand(7, 2, 4)
    w, b = layer.recurrent.weight.detach(), layer.recurrent.bias.detach()
    v = torch.zeros(2, 4)
    s = None
    expected = []
    for t in range(7):
        h = 0.8 * v + x[t] + (0 if s is None else s @ w.T + b)
        s = (h >= 1.0).float()
        v = h * (1 - s)
        expected.append(s)
    expected = torch.stack(expected)
    assert expected.sum() > 0
    assert torch.equal(_run(layer, x), expected)
    assert torch.equal(_run(layer, x), expected)  # snn.reset cleared the kept spikes
    snn.set_step_mode(layer, "single")
    snn.reset(layer)
    with torch.no_grad():
        assert torch.equal(torch.stack([layer(x_t) for x_t in x]), expected)
    with pytest.raises(TypeError, match="neuron"):
        Recurrent(nn.Linear(2, 2), nn.Linear(2, 2))


def test_recurrent_work_is_counted_once():
    from snn.energy import count_ops

    model = nn.Sequential(Recurrent(snn.LIF(0.9), nn.Linear(4, 4)))
    counts = count_ops(model, torch.rand(5, 2, 4))
    updates = {layer.name: layer.neuron_updates for layer in counts.layers if layer.neuron_updates}
    assert updates == {"0.neuron": 5 * 2 * 4}


# -- other libraries -------------------------------------------------------------------------


def _step_graph_module(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run a per-step module returning ``(output, state)`` over ``[T, B, ...]``."""
    outs, state = [], None
    with torch.no_grad():
        for x_t in x:
            out, state = net(x_t, state)
            outs.append(out)
    return torch.stack(outs)


SNNTORCH_MODELS = {
    "lif": lambda: nn.Sequential(TD(nn.Linear(12, 10)), snn.LIF(0.8, reset="hard")),
    "lif-decay-input": lambda: nn.Sequential(
        TD(nn.Linear(12, 10)), snn.LIF(0.7, reset="hard", decay_input=True)
    ),
    "cuba": lambda: nn.Sequential(TD(nn.Linear(12, 10)), snn.CubaLIF(0.7, 0.9, reset="hard")),
    "recurrent-lif": lambda: nn.Sequential(
        TD(nn.Linear(12, 6)), Recurrent(snn.LIF(0.85, reset="hard"), nn.Linear(6, 6))
    ),
    "recurrent-cuba": lambda: nn.Sequential(
        TD(nn.Linear(12, 6)), Recurrent(snn.CubaLIF(0.6, 0.85, reset="hard"), nn.Linear(6, 6))
    ),
}


@pytest.mark.parametrize("name", sorted(SNNTORCH_MODELS))
def test_snntorch_simulates_our_export_identically(name):
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    model = _init(SNNTORCH_MODELS[name]())
    x = torch.rand(25, 3, 12)
    ours = _run(model, x)
    assert 0 < ours.mean() < 1
    net = import_from_nir(export(model, x, dt=1e-4, discretisation="euler"))
    assert torch.equal(_step_graph_module(net, x), ours)


def test_snntorch_conv_pool_flatten():
    """snnTorch's importer keeps NIR's batch-free Flatten dims, so batch size 1 only."""
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    model = _init(
        nn.Sequential(
            TD(nn.Conv2d(2, 4, 3, padding=1)),
            snn.LIF(0.8, reset="hard"),
            TD(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 5)),
            snn.LIF(0.9, reset="hard"),
        ),
        1.0,
    )
    x = (torch.rand(12, 1, 2, 8, 8) < 0.5).float()
    ours = _run(model, x)
    assert ours.sum() > 0
    net = import_from_nir(export(model, x, dt=1e-4, discretisation="euler"))
    assert torch.equal(_step_graph_module(net, x).reshape(ours.shape), ours)


NORSE_MODELS = {
    "lif-decay-input": lambda: nn.Sequential(
        TD(nn.Linear(12, 10)), snn.LIF(0.8, reset="hard", decay_input=True)
    ),
    "cuba": lambda: nn.Sequential(TD(nn.Linear(12, 10)), snn.CubaLIF(0.7, 0.9, reset="hard")),
    "cuba-decay-input": lambda: nn.Sequential(
        TD(nn.Linear(12, 10)), snn.CubaLIF(0.7, 0.9, reset="hard", decay_input=True)
    ),
    "if": lambda: nn.Sequential(TD(nn.Linear(12, 10)), snn.IF(reset="hard")),
}


@pytest.mark.parametrize("name", sorted(NORSE_MODELS))
def test_norse_simulates_our_export_identically(name):
    pytest.importorskip("norse")
    from norse.torch import from_nir

    model = _init(NORSE_MODELS[name]())
    x = torch.rand(25, 3, 12) * 2
    ours = _run(model, x)
    assert 0 < ours.mean() < 1
    net = from_nir(export(model, x, dt=1e-3, discretisation="euler"), dt=1e-3, ignore_warnings=True)
    assert torch.equal(_step_graph_module(net, x), ours)


def test_norse_conv_sumpool():
    pytest.importorskip("norse")
    from norse.torch import from_nir

    model = _init(
        nn.Sequential(
            TD(nn.Conv2d(2, 4, 3, padding=1)),
            snn.LIF(0.8, reset="hard", decay_input=True),
            TD(SumPool2d(2), nn.Flatten(), nn.Linear(64, 5)),
            snn.IF(reset="hard"),
        ),
        1.0,
    )
    x = (torch.rand(12, 1, 2, 8, 8) < 0.5).float()
    ours = _run(model, x)
    assert ours.sum() > 0
    net = from_nir(export(model, x, dt=1e-3, discretisation="euler"), dt=1e-3, ignore_warnings=True)
    assert torch.equal(_step_graph_module(net, x).reshape(ours.shape), ours)


def test_snntorch_export_loads_identically():
    st = pytest.importorskip("snntorch")
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    def full(v: float, n: int) -> torch.Tensor:
        return torch.full((n,), v)

    kw = {"init_hidden": True, "reset_mechanism": "zero", "reset_delay": False}
    net = nn.Sequential(
        nn.Linear(12, 10),
        st.Leaky(beta=full(0.8, 10), threshold=full(1.0, 10), **kw),
        nn.Linear(10, 8),
        st.Synaptic(alpha=full(0.7, 8), beta=full(0.9, 8), threshold=full(1.0, 8), **kw),
        nn.Linear(8, 6),
        st.RLeaky(beta=full(0.85, 6), threshold=full(1.0, 6), linear_features=6, **kw),
    )
    _init(net)
    with torch.no_grad():  # RLeaky adds its recurrent bias at t = 0, NIR does not
        net[5].recurrent.bias.zero_()
    x = torch.rand(25, 3, 12) * 2
    graph = export_to_nir(net, x[0], ignore_dims=[0])
    utils.reset(net)
    with torch.no_grad():
        theirs = torch.stack([net(x_t) for x_t in x])
    assert 0 < theirs.mean() < 1
    ours = load(graph, dt=1e-4, discretisation="euler")
    assert torch.equal(_run(ours, x), theirs)


def test_norse_export_loads_identically():
    """Norse writes tau = dt / tau_mem_inv (dt times its time constant) and simulates its IF as
    v += x whatever dt is: its LIF graphs load exactly with dt = dt_norse**2, its IF with dt=1."""
    nt = pytest.importorskip("norse.torch")
    from norse.torch.utils.export_nir import to_nir

    n = 10
    lif = nt.LIFBoxCell(
        nt.LIFBoxParameters(
            tau_mem_inv=torch.full((n,), 200.0),
            v_th=torch.ones(n),
            v_leak=torch.zeros(n),
            v_reset=torch.zeros(n),
        )
    )
    x = torch.rand(25, 3, 12) * 2
    for neuron, dt in ((lif, 1e-6), (nt.IAFCell(nt.IAFParameters(v_th=torch.ones(n))), 1.0)):
        net = _init(nt.SequentialState(nn.Linear(12, n), neuron))
        graph = to_nir(net, x[0], dt=1e-3)
        theirs = _step_graph_module(net, x)
        assert 0 < theirs.mean() < 1
        assert torch.equal(_run(load(graph, dt=dt, discretisation="euler"), x), theirs)


def test_recurrent_layer_with_feedforward_round_trips():
    """The zoo's NIR-paper network: a Recurrent layer with its own feed-forward weights exports
    as input -> feedforward -> neuron <-> weight and reloads with identical spikes."""
    from snn.models.recurrent import nir_cuba_rsnn

    model = _init(nir_cuba_rsnn(), std=0.8)
    x = (torch.rand(30, 2, 12) < 0.3).float()
    ours = _run(model, x)
    assert 0 < ours.mean() < 1
    graph = export(model, x)
    sub = graph.nodes["lif1"]
    assert {("input", "feedforward"), ("feedforward", "neuron")} <= set(sub.edges)
    assert torch.equal(_run(load(graph), x), ours)


def test_batch_norm_is_folded_and_voting_is_linear():
    from snn.models.blocks import VotingLayer

    model = _init(
        nn.Sequential(
            TD(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.Flatten()),
            snn.LI(0.8),
            TD(nn.Linear(64, 6)),
            snn.LI(0.9),
            VotingLayer(3),
        )
    )
    norm = model[0][1]
    with torch.no_grad():  # running statistics far from the identity
        norm.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        norm.running_var.copy_(torch.tensor([4.0, 0.25, 1.0, 9.0]))
    model.eval()
    x = torch.rand(5, 2, 2, 4, 4)
    graph = export(model, x)
    assert "0.1" not in graph.nodes  # the norm lives in the convolution's weights and bias
    assert isinstance(graph.nodes["0.0"], nir.Conv2d) and graph.nodes["0.0"].bias.any()
    np.testing.assert_allclose(graph.nodes["4"].weight, np.kron(np.eye(2), np.full((1, 3), 1 / 3)))
    torch.testing.assert_close(_run(load(graph), x), _run(model, x), atol=1e-5, rtol=1e-5)
    model.train()  # batch statistics: nothing to fold
    with pytest.raises(NIRExportError, match=r"'0\.1' \(BatchNorm2d\)"):
        export(model, x)
