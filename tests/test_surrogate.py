"""Surrogate gradients: registry, derivatives against finite differences, immutability."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
import torch

from snn.surrogate import SURROGATES, Surrogate, get_surrogate, heaviside

NAMES = sorted(SURROGATES)


def _points(surrogate: Surrogate) -> torch.Tensor:
    """float64 points spread over the support, away from kinks of piecewise surrogates."""
    x = torch.linspace(-3, 3, 601, dtype=torch.float64) / surrogate.alpha
    kinks = torch.tensor(
        [
            0.0,
            1 / surrogate.alpha,
            -1 / surrogate.alpha,
            0.5 / surrogate.alpha,
            -0.5 / surrogate.alpha,
        ],
        dtype=torch.float64,
    )
    far = (x.unsqueeze(1) - kinks).abs().min(1).values > 1e-3
    return x[far]


def test_registry_has_the_required_surrogates() -> None:
    required = {
        "atan",
        "sigmoid",
        "fast_sigmoid",
        "triangle",
        "rectangle",
        "erf",
        "piecewise_quadratic",
        "soft_sign",
        "straight_through",
    }
    assert required <= set(SURROGATES)
    ids = [cls.kernel_id for cls in SURROGATES.values() if cls.kernel_id >= 0]
    assert len(set(ids)) == len(ids)
    assert all(SURROGATES[n].kernel_id >= 0 for n in required)


def test_several_surrogates_without_kernel_register(monkeypatch) -> None:
    """Any number of surrogates may lack a kernel derivative (kernel_id = -1); a kernel id
    >= 0 stays unique."""
    import snn.surrogate as sur

    monkeypatch.setattr(sur, "SURROGATES", dict(SURROGATES))
    made = []
    for i in range(3):
        cls = dataclasses.make_dataclass(f"Mine{i}", [], bases=(sur.ATan,), frozen=True)
        cls.name, cls.kernel_id = f"mine_{i}", -1
        made.append(sur.register_surrogate(cls))
    assert all(sur.SURROGATES[f"mine_{i}"] is made[i] for i in range(3))
    clash = dataclasses.make_dataclass("Clash", [], bases=(sur.ATan,), frozen=True)
    clash.name = "clash"
    with pytest.raises(ValueError, match="kernel_id 0"):
        sur.register_surrogate(clash)


@pytest.mark.parametrize("name", ["user_exponential", "user_algebraic"])
def test_user_surrogate_trains_under_auto_through_the_reference(name: str) -> None:
    """A registered surrogate without a kernel: backend="auto" falls back to the reference
    (same spikes and gradients as backend="torch") and a small network learns."""
    import snn
    from snn.backends import UnsupportedConfiguration, resolve, run_sequence_backend

    assert SURROGATES[name].kernel_id == -1
    x = torch.randn(12, 4, 6) + 0.5
    auto = run_sequence_backend("lif", "auto", x, None, False,
                                {"beta": 0.9, "surrogate": name})
    ref = run_sequence_backend("lif", "torch", x, None, False,
                               {"beta": 0.9, "surrogate": name})
    assert torch.equal(auto.spikes, ref.spikes)
    fused = [f for f in resolve("lif", "auto", "cpu") if "numba" in f.__name__]
    for impl in fused:  # the fused path refuses it rather than using another derivative
        with pytest.raises(UnsupportedConfiguration, match="no derivative"):
            impl(x, None, beta=0.9, surrogate=name)
    torch.manual_seed(1)
    model = torch.nn.Sequential(snn.TimeDistributed(torch.nn.Linear(6, 16)),
                                snn.LIF(surrogate=name), snn.TimeDistributed(
                                    torch.nn.Linear(16, 2)), snn.LI())
    target = (x.mean(dim=(0, 2)) > 0.5).long()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(30):
        snn.reset(model)
        loss = torch.nn.functional.cross_entropy(model(x).mean(0), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_derivative_matches_finite_differences_of_primitive(name: str, alpha: float) -> None:
    s = get_surrogate(name, alpha=alpha)
    x = _points(s)
    eps = 1e-6
    numeric = (s.primitive(x + eps) - s.primitive(x - eps)) / (2 * eps)
    torch.testing.assert_close(s.derivative(x), numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_heaviside_and_backward_is_derivative(name: str) -> None:
    s = get_surrogate(name)
    x = torch.tensor([-1.0, -1e-4, 0.0, 1e-4, 1.0], dtype=torch.float64, requires_grad=True)
    y = s(x)
    assert y.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert torch.equal(y, heaviside(x.detach()))
    g = torch.randn(5, dtype=torch.float64)
    (grad,) = torch.autograd.grad(y, x, g)
    torch.testing.assert_close(grad, g * s.derivative(x.detach()))


@pytest.mark.parametrize("name", NAMES)
def test_surrogates_are_immutable_and_picklable(name: str) -> None:
    s = get_surrogate(name, alpha=1.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.alpha = 2.0  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(s)) == s
    assert copy.deepcopy(s) == s
    assert s.kernel_params == (1.5,)
    assert hash(s) == hash(get_surrogate(name, alpha=1.5))


@pytest.mark.parametrize("name", [n for n in NAMES if n != "straight_through"])
def test_step_primitives_integrate_to_a_bounded_step(name: str) -> None:
    """Every step-like surrogate has a monotone, bounded primitive (a smoothed step)."""
    s = get_surrogate(name)
    x = torch.linspace(-50, 50, 2001, dtype=torch.float64)
    assert (s.derivative(x) >= 0).all()
    g = s.primitive(x)
    assert (g[1:] - g[:-1] >= -1e-12).all()


def test_unknown_name_and_bad_parameters() -> None:
    with pytest.raises(ValueError, match=r"unknown surrogate 'nope'.*atan"):
        get_surrogate("nope")
    with pytest.raises(ValueError, match="alpha must be positive"):
        get_surrogate("atan", alpha=-1.0)
    with pytest.raises(TypeError, match="alpha must be a number"):
        get_surrogate("atan", alpha="2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="given with a surrogate instance"):
        get_surrogate(get_surrogate("atan"), alpha=1.0)
    with pytest.raises(TypeError, match="surrogate must be a name"):
        get_surrogate(3)  # type: ignore[arg-type]


def test_default_is_atan() -> None:
    assert get_surrogate(None) == get_surrogate("atan")


KERNEL_NAMES = sorted(n for n, c in SURROGATES.items() if c.kernel_id >= 0)


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_kernel_derivative_is_the_derivative(name: str) -> None:
    """The scalar kernel the CPU loops compile, with the class's kernel constants, equals
    ``derivative`` (evaluated here in Python floats)."""
    surrogate = SURROGATES[name](alpha=1.7)
    x = _points(surrogate)
    consts = surrogate.kernel_constants()
    got = torch.tensor([type(surrogate).kernel(float(v), *consts, 1.0, 0.0) for v in x],
                       dtype=torch.float64)
    torch.testing.assert_close(got, surrogate.derivative(x), rtol=1e-12, atol=1e-14)


def test_kernel_id_without_kernel_is_rejected(monkeypatch) -> None:
    import snn.surrogate as sur

    monkeypatch.setattr(sur, "SURROGATES", dict(SURROGATES))

    @dataclasses.dataclass(frozen=True)
    class NoKernel(sur.Surrogate):
        name = "no_kernel"
        kernel_id = 99

        def derivative(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ones_like(x)

    with pytest.raises(ValueError, match=r"no_kernel.*no kernel"):
        sur.register_surrogate(NoKernel)
