"""Every registered neuron module: shapes, modes, gradients, state handling, dtypes, pickling."""

from __future__ import annotations

import copy
import io
import math
import pickle
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import nn

import snn
from snn.functional import LIFState
from snn.fused.description import FIRE_MULTILEVEL, FIRE_TERNARY, get_description
from snn.neurons import NEURONS, BaseNeuron, create_neuron
from snn.surrogate import Sigmoid

NAMES = sorted(NEURONS)
SPIKING = [n for n in NAMES if NEURONS[n].spiking]
RESETS = ["subtract", "hard", "none"]
RESET_CASES = [(n, r) for n in NAMES for r in RESETS
               if not NEURONS[n].spiking or r in get_description(NEURONS[n].kind).resets]
SURROGATE_GRADIENT = [n for n in NAMES if not NEURONS[n].spiking
                      or get_description(NEURONS[n].kind).uses_surrogate]
"""Neurons whose gradient is a surrogate's (the integer LIF has its own straight-through
estimator, tested in tests/functional/test_multilevel.py)."""


def spike_values(neuron: BaseNeuron) -> set[float]:
    """The values the neuron's spikes may take, by its description's spike rule."""
    fire = get_description(neuron.kind).fire
    if fire == FIRE_MULTILEVEL:
        return {float(k) for k in range(neuron.levels + 1)}
    if fire == FIRE_TERNARY:
        return {-1.0, 0.0, 1.0}
    return {0.0, 1.0}


@dataclass(frozen=True)
class SmoothSigmoid(Sigmoid):
    """Test surrogate whose forward is its smooth primitive, so finite differences of the whole
    network equal the analytical (surrogate) gradient and gradcheck applies."""

    name: ClassVar[str] = "smooth_sigmoid_test"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.primitive(x)


def make(name: str, **kwargs) -> BaseNeuron:
    return create_neuron(name, **kwargs)


def drive(shape=(8, 3, 5), dtype=torch.float32) -> torch.Tensor:
    return torch.rand(*shape, dtype=dtype) * 1.5


@pytest.mark.parametrize("name", NAMES)
def test_sequence_shapes_dtype_and_binary_spikes(name: str) -> None:
    neuron = make(name)
    x = drive()
    out = neuron(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    if neuron.spiking:
        assert set(out.unique().tolist()) <= spike_values(neuron)
        assert out.sum() > 0, "drive should make some neurons fire"


@pytest.mark.parametrize(("name", "reset"), RESET_CASES)
def test_single_step_equals_sequence(name: str, reset: str) -> None:
    kwargs = {"reset": reset} if NEURONS[name].spiking else {}
    seq = make(name, record=True, **kwargs)
    single = make(name, step_mode="single", record=True, **kwargs)
    single.load_state_dict(seq.state_dict())
    x = drive((10, 2, 4), torch.float64)
    out_seq = seq(x)
    v_seq = seq.recorded_v
    outs, vs = [], []
    for t in range(x.shape[0]):
        outs.append(single(x[t]))
        vs.append(single.recorded_v)
    torch.testing.assert_close(torch.stack(outs), out_seq)
    torch.testing.assert_close(torch.cat(vs), v_seq)


@pytest.mark.parametrize("name", NAMES)
def test_state_carries_across_calls(name: str) -> None:
    whole, split = make(name), make(name)
    x = drive((12, 2, 3))
    expected = whole(x)
    got = torch.cat([split(x[:5]), split(x[5:])])
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("name", SURROGATE_GRADIENT)
def test_gradcheck_through_time(name: str) -> None:
    """Analytical BPTT gradients equal finite differences (smooth forward, float64)."""
    kwargs = {"surrogate": SmoothSigmoid(alpha=2.0)} if NEURONS[name].spiking else {}
    neuron = make(name, **kwargs).double()
    x = drive((5, 2, 3), torch.float64).requires_grad_()

    def run(inp: torch.Tensor) -> torch.Tensor:
        snn.reset(neuron)
        return neuron(inp)

    assert torch.autograd.gradcheck(run, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("reset", RESETS)
def test_gradcheck_learnable_decay_and_threshold(reset: str) -> None:
    neuron = snn.ParametricLIF(
        param_shape=(3,), reset=reset, learn_threshold=True, surrogate=SmoothSigmoid(alpha=2.0)
    ).double()
    x = drive((6, 2, 3), torch.float64)
    w0, th0 = neuron.w.detach().clone(), neuron.threshold.detach().clone()

    def run(w: torch.Tensor, th: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            neuron.w.copy_(w0)
            neuron.threshold.copy_(th0)
        snn.reset(neuron)
        return snn.functional.lif_sequence(
            x,
            beta=torch.sigmoid(w),
            threshold=th,
            reset=reset,
            decay_input=True,
            surrogate=neuron.surrogate,
        ).spikes

    w = w0.clone().requires_grad_()
    th = th0.clone().requires_grad_()
    assert torch.autograd.gradcheck(run, (w, th), eps=1e-6, atol=1e-5)


def test_gradients_reach_learnable_parameters() -> None:
    neuron = snn.ParametricLIF(param_shape=(4,), learn_threshold=True)
    neuron(drive((8, 2, 4))).sum().backward()
    assert neuron.w.grad is not None and neuron.w.grad.abs().sum() > 0
    assert neuron.threshold.grad is not None and neuron.threshold.grad.abs() > 0
    names = dict(neuron.named_parameters())
    assert set(names) == {"w", "threshold"}


@pytest.mark.parametrize("name", NAMES)
def test_reset_touches_only_the_given_model(name: str) -> None:
    a = nn.Sequential(nn.Identity(), make(name))
    b = nn.Sequential(make(name))
    x = drive()
    a(x)
    b(x)
    before = [t.clone() for t in b[0].state]
    snn.reset(a)
    assert a[1].state is None
    assert b[0].state is not None
    for t0, t1 in zip(before, b[0].state, strict=True):
        assert torch.equal(t0, t1)
    # after a reset, the model starts again from zero: same output as a fresh neuron
    torch.testing.assert_close(a(x), make(name)(x))


@pytest.mark.parametrize("name", NAMES)
def test_explicit_initial_state(name: str) -> None:
    neuron = make(name)
    x = drive((4, 2, 3))
    neuron(x)
    state = neuron.state
    replay = make(name)
    out_a = neuron(x)
    out_b = replay(x, state=state)
    torch.testing.assert_close(out_a, out_b)


def test_initial_state_changes_output() -> None:
    x = torch.full((1, 1, 1), 0.5)
    assert snn.IF()(x).item() == 0.0
    assert snn.IF()(x, state=LIFState(torch.full((1, 1), 0.6))).item() == 1.0


@pytest.mark.parametrize("name", NAMES)
def test_state_follows_input_and_shape_change_needs_reset(name: str) -> None:
    neuron = make(name)
    neuron(drive((3, 2, 5), torch.float64))
    assert all(t.dtype == torch.float64 and t.shape == (2, 5) for t in neuron.state)
    with pytest.raises(ValueError, match=r"snn\.reset"):
        neuron(drive((3, 4, 5), torch.float64))
    snn.reset(neuron)
    assert neuron(drive((3, 4, 5))).shape == (3, 4, 5)


@pytest.mark.parametrize("name", NAMES)
def test_detach_cuts_the_graph(name: str) -> None:
    model = nn.Sequential(snn.TimeDistributed(nn.Linear(3, 3)), make(name))
    model(drive((4, 2, 3)))
    assert any(t.requires_grad for t in model[1].state)
    snn.detach(model)
    assert not any(t.requires_grad for t in model[1].state)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(name: str, dtype: torch.dtype) -> None:
    x = drive((6, 2, 8))
    ref = make(name)(x.to(torch.float64))
    out = make(name)(x.to(dtype))
    assert out.dtype == dtype
    if NEURONS[name].spiking:
        # rounding can move a value across the threshold; nearly every spike must agree
        assert (out.double() == ref).float().mean() > 0.9
    else:
        torch.testing.assert_close(out.double(), ref, rtol=2e-2, atol=2e-2)


def test_autocast_bfloat16() -> None:
    model = nn.Sequential(
        snn.TimeDistributed(nn.Linear(8, 16)),
        snn.LIF(),
        snn.TimeDistributed(nn.Linear(16, 4)),
        snn.LI(),
    )
    x = drive((5, 3, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert model[0][0].weight.grad is not None


@pytest.mark.parametrize("name", NAMES)
def test_pickle_deepcopy_and_state_dict(name: str) -> None:
    neuron = make(name)
    x = drive()
    neuron(x)
    clone = pickle.loads(pickle.dumps(neuron))
    twin = copy.deepcopy(neuron)
    expected = neuron(x)  # all three continue from the same kept state
    torch.testing.assert_close(clone(x), expected)
    torch.testing.assert_close(twin(x), expected)
    buf = io.BytesIO()
    torch.save(neuron.state_dict(), buf)
    buf.seek(0)
    fresh = make(name)
    fresh.load_state_dict(torch.load(buf))
    snn.reset(neuron)
    torch.testing.assert_close(fresh(x), neuron(x))
    assert not list(neuron.buffers()), "neurons keep no buffers (DDP-safe)"


def test_state_dict_restores_learned_parameters() -> None:
    a = snn.ParametricLIF(param_shape=(2,), learn_threshold=True)
    with torch.no_grad():
        a.w.fill_(1.0)
        a.threshold.fill_(0.7)
    b = snn.ParametricLIF(param_shape=(2,), learn_threshold=True)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.beta, a.beta)
    assert b.threshold.item() == pytest.approx(0.7)


def test_time_constants_map_exactly() -> None:
    assert snn.LIF(tau=20.0, dt=0.5).beta == pytest.approx(math.exp(-0.5 / 20))
    cuba = snn.CubaLIF(tau_syn=5.0, tau_mem=10.0)
    assert (cuba.alpha, cuba.beta) == pytest.approx((math.exp(-1 / 5), math.exp(-1 / 10)))
    alif = snn.ALIF(tau=10.0, tau_adapt=200.0)
    assert alif.beta_adapt == pytest.approx(math.exp(-1 / 200))
    plif = snn.ParametricLIF(tau=2.0)
    assert plif.beta.item() == pytest.approx(math.exp(-0.5))


def test_bad_module_arguments() -> None:
    with pytest.raises(ValueError, match="step_mode must be one of"):
        snn.LIF(step_mode="multi")
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        snn.LIF(backend="gpu")
    with pytest.raises(ValueError, match="either beta or its time constant"):
        snn.LIF(beta=0.9, tau=10.0)
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\]"):
        snn.LIF(beta=1.2)
    with pytest.raises(ValueError, match="threshold must be positive"):
        snn.IF(threshold=-1.0)
    with pytest.raises(ValueError, match="unknown surrogate"):
        snn.LIF(surrogate="relu")
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\)"):
        snn.ParametricLIF(beta=1.0)
    with pytest.raises(ValueError, match="unknown neuron 'hh'"):
        create_neuron("hh")
    with pytest.raises(ValueError, match=r"time-first \[T, B, \.\.\.\]"):
        snn.LIF()(torch.zeros(4))


def test_each_neuron_gets_its_own_surrogate_instance_value() -> None:
    a, b = snn.LIF(surrogate="sigmoid"), snn.LIF()
    assert a.surrogate.name == "sigmoid" and b.surrogate.name == "atan"


def test_set_step_mode_and_backend() -> None:
    model = nn.Sequential(snn.LIF(), snn.TimeDistributed(nn.Identity()), snn.IF())
    snn.set_step_mode(model, "single")
    assert model[0].step_mode == "single" and model[2].step_mode == "single"
    snn.set_backend(model, "torch")
    assert model[2].backend == "torch"
    with pytest.raises(ValueError, match="unknown backend"):
        snn.set_backend(model, "nope")


def test_backends_explicit_torch_matches_auto() -> None:
    x = drive()
    torch.testing.assert_close(snn.LIF(backend="torch")(x), snn.LIF()(x))


@pytest.mark.cuda
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name: str) -> None:
    x = drive()
    cpu = make(name)(x)
    gpu = make(name).cuda()(x.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu)
