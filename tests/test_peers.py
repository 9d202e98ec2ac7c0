"""The peer mappings of docs/coming_from_peers.md, checked against the installed peers.

Each peer is optional (the ``bench`` extra): its tests skip, saying so, when it is missing.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from snn.neurons import IF, LIF, CubaLIF, ParametricLIF
from snn.peers import from_norse, from_snntorch, from_spikingjelly

T, B, N = 60, 3, 16


def _need(name: str):
    return pytest.importorskip(name, reason=f"{name} is not installed (pip install '.[bench]')")


def _input(seed: int, low: float, high: float, shape=(T, B, N)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float64)


def _ours(neuron, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes ``[T, B, N]`` and the final membrane, one step per call or all at once."""
    single = neuron.step_mode == "single"
    spikes = torch.stack([neuron(x_t) for x_t in x]) if single else neuron(x)
    return spikes, neuron.state.v


def _check_spiking(spikes: torch.Tensor) -> None:
    """The comparison means something only when the neurons both fire and stay silent."""
    rate = spikes.mean().item()
    assert 0.02 < rate < 0.9, rate


# -- SpikingJelly -----------------------------------------------------------------------------

SJ_CASES = {
    "IFNode hard": ("IFNode", {}),
    "IFNode soft": ("IFNode", {"v_reset": None}),
    "LIFNode default": ("LIFNode", {}),
    "LIFNode no decay_input soft": ("LIFNode", {"tau": 3.0, "decay_input": False, "v_reset": None}),
    "LIFNode leak to v_reset": ("LIFNode", {"tau": 1.5, "v_reset": -0.5, "v_threshold": 0.5}),
    "ParametricLIFNode": ("ParametricLIFNode", {"init_tau": 2.5, "v_reset": 0.2}),
}


@pytest.mark.parametrize("case", list(SJ_CASES))
def test_spikingjelly_neurons_give_the_same_spikes(case):
    _need("spikingjelly")
    from spikingjelly.activation_based import neuron

    cls, kwargs = SJ_CASES[case]
    peer = getattr(neuron, cls)(step_mode="m", **kwargs).double()
    x = _input(1, -0.3, 0.9 if cls == "IFNode" or kwargs.get("decay_input") is False else 2.4)
    with torch.no_grad():
        expected = peer(x)
    ours = from_spikingjelly(peer)
    assert ours.step_mode == "sequence"
    spikes, v = _ours(ours, x)
    _check_spiking(expected)
    torch.testing.assert_close(spikes, expected, rtol=0, atol=0)
    v_reset = kwargs.get("v_reset", 0.0) or 0.0
    torch.testing.assert_close(v + v_reset, peer.v, rtol=1e-12, atol=1e-12)


def test_spikingjelly_tau_is_one_over_the_leak_per_step():
    _need("spikingjelly")
    from spikingjelly.activation_based import neuron

    peer = neuron.LIFNode(tau=2.0, step_mode="m").double()
    ours = from_spikingjelly(peer)
    assert isinstance(ours, LIF) and ours.beta == 0.5 and ours.decay_input
    # here tau means beta = exp(-dt / tau): LIF(tau=2.0) is another neuron
    assert LIF(tau=2.0).beta == pytest.approx(math.exp(-0.5))
    x = _input(2, 0.0, 2.4)
    with torch.no_grad():
        expected = peer(x)
    assert not torch.equal(LIF(tau=2.0, decay_input=True)(x), expected)
    plif = neuron.ParametricLIFNode(init_tau=4.0)
    mapped = from_spikingjelly(plif)
    assert isinstance(mapped, ParametricLIF)
    assert mapped.beta.item() == pytest.approx(0.75)
    assert mapped.beta.item() == pytest.approx(1 - torch.sigmoid(plif.w).item())


def test_spikingjelly_fires_at_the_threshold_like_ours():
    _need("spikingjelly")
    from spikingjelly.activation_based import neuron

    x = torch.ones(1, 1, 1)  # h = 1.0 = threshold exactly
    assert neuron.IFNode(step_mode="m")(x).item() == 1.0
    assert IF()(x).item() == 1.0


# -- snnTorch ---------------------------------------------------------------------------------

SNNTORCH_CASES = {
    "Leaky subtract no delay": ("Leaky", {"beta": 0.8, "reset_delay": False}),
    "Leaky zero": ("Leaky", {"beta": 0.7, "reset_mechanism": "zero"}),
    "Leaky zero no delay": (
        "Leaky",
        {"beta": 0.7, "reset_mechanism": "zero", "reset_delay": False},
    ),
    "Leaky none": ("Leaky", {"beta": 0.8, "reset_mechanism": "none", "threshold": 1.5}),
    "Synaptic subtract no delay": ("Synaptic", {"alpha": 0.5, "beta": 0.8, "reset_delay": False}),
    "Synaptic zero no delay": (
        "Synaptic",
        {"alpha": 0.6, "beta": 0.7, "reset_mechanism": "zero", "reset_delay": False},
    ),
}


def _run_snntorch(peer, x):
    import snntorch

    spikes = []
    if isinstance(peer, snntorch.Synaptic):
        syn, mem = peer.init_synaptic()
        for x_t in x:
            spk, syn, mem = peer(x_t, syn, mem)
            spikes.append(spk)
    else:
        mem = peer.init_leaky()
        for x_t in x:
            spk, mem = peer(x_t, mem)
            spikes.append(spk)
    return torch.stack(spikes), mem


@pytest.mark.parametrize("case", list(SNNTORCH_CASES))
def test_snntorch_neurons_give_the_same_spikes(case):
    snntorch = _need("snntorch")
    cls, kwargs = SNNTORCH_CASES[case]
    peer = getattr(snntorch, cls)(**kwargs).double()
    # inputs below the threshold keep h < 2 * threshold at every spike (see the next tests)
    x = _input(3, -0.1, 0.45 if cls == "Synaptic" else 0.6)
    with torch.no_grad():
        expected, mem = _run_snntorch(peer, x)
    ours = from_snntorch(peer)
    assert isinstance(ours, CubaLIF if cls == "Synaptic" else LIF)
    spikes, v = _ours(ours, x)
    if kwargs.get("reset_mechanism") != "none":
        _check_spiking(expected)
    else:
        assert expected.sum() > 0
    torch.testing.assert_close(spikes, expected.to(spikes.dtype), rtol=0, atol=0)
    if kwargs.get("reset_delay") is False or kwargs.get("reset_mechanism") == "none":
        torch.testing.assert_close(v, mem, rtol=1e-12, atol=1e-12)  # both after the reset


def test_snntorch_default_delayed_subtraction_is_another_model():
    snntorch = _need("snntorch")
    x = torch.tensor([1.2, 1.0, 0.0], dtype=torch.float64).reshape(3, 1, 1)
    delayed, _ = _run_snntorch(snntorch.Leaky(beta=0.5).double(), x)
    immediate, _ = _run_snntorch(snntorch.Leaky(beta=0.5, reset_delay=False).double(), x)
    # by hand, here: h = 1.2 fires, v = 0.2; h = 0.1 + 1.0 fires, v = 0.1; h = 0.05
    assert LIF(beta=0.5)(x).flatten().tolist() == [1.0, 1.0, 0.0]
    assert immediate.flatten().tolist() == [1.0, 1.0, 0.0]
    # delayed: the threshold comes off at step 2, after the decay: 0.6 + 1.0 - 1 = 0.6 < 1
    assert delayed.flatten().tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="reset_delay=True"):
        from_snntorch(snntorch.Leaky(beta=0.5))


def test_snntorch_without_delay_parts_when_a_reset_leaves_v_above_threshold():
    snntorch = _need("snntorch")
    x = torch.tensor([2.5, 0.5], dtype=torch.float64).reshape(2, 1, 1)
    peer, _ = _run_snntorch(snntorch.Leaky(beta=0.5, reset_delay=False).double(), x)
    # here: h = 2.5 fires, v = 1.5; h = 0.75 + 0.5 = 1.25 fires. snnTorch subtracts the
    # threshold once more (v = 1.5 > 1) before its second decision: 1.25 - 1 = 0.25, silent.
    assert from_snntorch(snntorch.Leaky(beta=0.5, reset_delay=False))(x[0]).item() == 1.0
    assert LIF(beta=0.5)(x).flatten().tolist() == [1.0, 1.0]
    assert peer.flatten().tolist() == [1.0, 0.0]


def test_snntorch_fires_above_the_threshold_ours_at_it():
    snntorch = _need("snntorch")
    x = torch.ones(1, 1, 1)
    peer, _ = _run_snntorch(snntorch.Leaky(beta=1.0, reset_delay=False), x)
    assert peer.item() == 0.0  # h = 1.0 = threshold: snnTorch needs h > threshold
    assert from_snntorch(snntorch.Leaky(beta=1.0, reset_delay=False))(x[0]).item() == 1.0


def test_snntorch_synaptic_zero_with_delay_is_another_model():
    snntorch = _need("snntorch")
    x = torch.tensor([1.5, 0.5], dtype=torch.float64).reshape(2, 1, 1)
    peer, _ = _run_snntorch(
        snntorch.Synaptic(alpha=0.5, beta=0.5, reset_mechanism="zero").double(), x
    )
    # here: i = 1.5, h = 1.5 fires, v = 0; i = 0.75 + 0.5, h = 1.25 fires again. snnTorch zeroes
    # the whole step after the spike (current and membrane, input included): silent.
    assert CubaLIF(alpha=0.5, beta=0.5, reset="hard")(x).flatten().tolist() == [1.0, 1.0]
    assert peer.flatten().tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="zeroes the current"):
        from_snntorch(snntorch.Synaptic(alpha=0.5, beta=0.5, reset_mechanism="zero"))


def test_snntorch_refusals():
    snntorch = _need("snntorch")
    with pytest.raises(ValueError, match="graded"):
        from_snntorch(snntorch.Leaky(beta=0.5, reset_delay=False, graded_spikes_factor=2.0))
    with pytest.raises(ValueError, match="one per neuron"):
        from_snntorch(snntorch.Leaky(beta=torch.full((4,), 0.5), reset_delay=False))
    with pytest.raises(TypeError, match=r"expected snntorch\.Leaky"):
        from_snntorch(nn.Linear(2, 2))


# -- Norse ------------------------------------------------------------------------------------


def _f64(params):
    """Norse keeps its parameters as float32 tensors outside the module: make them float64."""
    return params._replace(
        **{k: v.double() for k, v in params._asdict().items() if isinstance(v, torch.Tensor)}
    )


def _norse_cases():
    nt = _need("norse.torch")
    from norse.torch.functional.reset import reset_subtract

    shifted = nt.LIFParameters(
        tau_syn_inv=torch.tensor(100.0),
        tau_mem_inv=torch.tensor(250.0),
        v_leak=torch.tensor(-0.2),
        v_th=torch.tensor(0.6),
        v_reset=torch.tensor(-0.4),
    )
    subtract = nt.LIFBoxParameters(tau_mem_inv=torch.tensor(200.0), reset_method=reset_subtract)
    return {
        "LIFCell default": nt.LIFCell(p=_f64(nt.LIFParameters())),
        "LIFCell v_leak": nt.LIFCell(p=_f64(shifted)),
        "LIF sequence": nt.LIF(p=_f64(nt.LIFParameters())),
        "LIFBoxCell": nt.LIFBoxCell(p=_f64(nt.LIFBoxParameters())),
        "LIFBoxCell subtract": nt.LIFBoxCell(p=_f64(subtract)),
    }


NORSE_CASES = [
    "LIFCell default",
    "LIFCell v_leak",
    "LIF sequence",
    "LIFBoxCell",
    "LIFBoxCell subtract",
]


@pytest.mark.parametrize("case", NORSE_CASES)
def test_norse_neurons_give_the_same_spikes(case):
    peer = _norse_cases()[case].double()
    x = _input(4, -0.5, 3.0 if "Box" in case else 1.6)
    with torch.no_grad():
        if case == "LIF sequence":
            expected, state = peer(x)
        else:
            state, out = None, []
            for x_t in x:
                z, state = peer(x_t, state)
                out.append(z)
            expected = torch.stack(out)
    ours = from_norse(peer)
    spikes, v = _ours(ours, x)
    _check_spiking(expected)
    torch.testing.assert_close(spikes, expected, rtol=0, atol=0)
    torch.testing.assert_close(v + float(peer.p.v_leak), state.v, rtol=1e-12, atol=1e-12)
    if isinstance(ours, CubaLIF):  # Norse stores the current already decayed for the next step
        torch.testing.assert_close(ours.alpha * ours.state.i, state.i, rtol=1e-12, atol=1e-12)


def test_norse_euler_decays():
    nt = _need("norse.torch")
    cell = nt.LIFCell(p=nt.LIFParameters(tau_syn_inv=torch.tensor(1 / 4e-3)), dt=1e-3)
    ours = from_norse(cell)
    assert isinstance(ours, CubaLIF) and ours.decay_input
    assert ours.alpha == pytest.approx(1 - 1e-3 / 4e-3)  # 1 - dt / tau_syn, not exp(-dt/tau)
    assert ours.beta == pytest.approx(1 - 1e-3 * 100.0)  # 1 - dt / tau_mem (tau_mem = 10 ms)
    with pytest.raises(ValueError, match="unstable"):
        from_norse(nt.LIFCell(dt=0.02))  # dt * tau_syn_inv = 4


def test_norse_fires_above_the_threshold_ours_at_it():
    nt = _need("norse.torch")
    box = nt.LIFBoxCell(p=nt.LIFBoxParameters(tau_mem_inv=torch.tensor(1000.0)), dt=1e-3)
    x = torch.ones(1, 1)  # beta = 0: h = x = 1.0 = threshold exactly
    z, _ = box(x)
    assert z.item() == 0.0
    assert from_norse(box)(x).item() == 1.0
    with pytest.raises(TypeError, match="expected LIFCell"):
        from_norse(nn.ReLU())


# -- gradients: the surrogates carried over give the same backward pass ----------------------


def _grad(run, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    spikes = run(x)
    (spikes * torch.linspace(0.5, 1.5, spikes.shape[-1], dtype=x.dtype)).sum().backward()
    return x.grad


def test_spikingjelly_gradients_are_the_same():
    _need("spikingjelly")
    from spikingjelly.activation_based import neuron, surrogate

    x = _input(5, -0.3, 2.4, shape=(20, 2, 8))
    for peer in (
        neuron.LIFNode(step_mode="m").double(),  # Sigmoid(alpha=4), SpikingJelly's default
        neuron.LIFNode(step_mode="m", surrogate_function=surrogate.ATan(alpha=3.0)).double(),
    ):
        expected = _grad(peer, x)
        got = _grad(from_spikingjelly(peer, backend="torch"), x)
        assert expected.abs().sum() > 0
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_snntorch_default_surrogate_gives_the_same_gradients():
    snntorch = _need("snntorch")
    peer = snntorch.Leaky(beta=0.8, reset_delay=False).double()
    x = _input(6, -0.1, 0.6, shape=(20, 2, 8))
    expected = _grad(lambda x: _run_snntorch(peer, x)[0], x)
    got = _grad(from_snntorch(peer, step_mode="sequence", backend="torch"), x)
    assert expected.abs().sum() > 0
    # the same equations; snnTorch's backward differs from this one in the 9th digit
    # (float64 throughout, cause not traced), far below any training effect
    torch.testing.assert_close(got, expected, rtol=1e-7, atol=1e-9)


def test_norse_superspike_is_fast_sigmoid_with_alpha_one():
    _need("norse.torch")
    peer = _norse_cases()["LIF sequence"]
    x = _input(7, -0.5, 1.6, shape=(20, 2, 8))
    expected = _grad(lambda x: peer(x)[0], x)
    got = _grad(from_norse(peer, backend="torch"), x)
    assert expected.abs().sum() > 0
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_the_guide_examples_run():
    _need("spikingjelly")
    guide = Path(__file__).resolve().parents[1] / "docs" / "coming_from_peers.md"
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), flags=re.S)
    assert len(blocks) == 2
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(guide), "exec"), namespace)
    assert namespace["out"].shape == (100, 32, 20)
