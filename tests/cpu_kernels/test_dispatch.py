"""``backend="auto"`` on CPU tensors: modules give the reference's spikes and gradients."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from snn import backends
from snn.backends import BackendUnavailableError, resolve
from snn.fused.description import get_description
from snn.neurons.registry import NEURONS, create_neuron
from snn.surrogate import SURROGATES, ATan

pytest.importorskip("numba", reason="the numba backend needs numba (pip install 'snn[cpu]')")

from kernel_cases import FUSED


def _module_cases():
    """Every module x the resets its description allows x every registered surrogate (those
    without a kernel included: auto falls back to the reference for them)."""
    for name, cls in NEURONS.items():
        if not cls.spiking:
            for di in (False, True):
                yield name, {"decay_input": di}
            continue
        desc = get_description(cls.kind)
        decays = (False,) if name == "if" else (False, True)
        surrogates = sorted(SURROGATES) if desc.uses_surrogate else [None]
        for reset in desc.resets:
            for k, sg in enumerate(surrogates):
                for di in decays:
                    kw = {"reset": reset, "detach_reset": k % 3 == 1,
                          "learn_threshold": k % 2 == 0}
                    if sg is not None:
                        kw["surrogate"] = sg
                    if name != "if":
                        kw["decay_input"] = di
                    yield name, kw


MODULE_CASES = list(_module_cases())


def _id(case):
    name, kw = case
    return "-".join([name, *(f"{k}={v}" for k, v in kw.items())])


def _run(module, x):
    x = x.detach().clone().requires_grad_()
    out = module(x)
    w = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
    loss = (out * w).sum() + (module.state.v * 0.5).sum()
    params = [p for p in module.parameters()]
    grads = torch.autograd.grad(loss, [x, *params])
    return out.detach(), grads


@pytest.mark.parametrize("case", MODULE_CASES, ids=[_id(c) for c in MODULE_CASES])
def test_auto_module_matches_torch_module(case):
    name, kw = case
    torch.manual_seed(5)
    fused = create_neuron(name, backend="auto", **kw)
    plain = create_neuron(name, backend="torch", **kw)
    plain.load_state_dict(fused.state_dict())
    scale = 5.0 if kw.get("decay_input") or name == "plif" else 1.0
    x = (torch.randn(24, 3, 5) * 0.6 + 0.45) * scale
    # two calls: the second continues from the state the first left
    for _ in range(2):
        out_f, g_f = _run(fused, x)
        out_p, g_p = _run(plain, x)
        if name == "li":
            torch.testing.assert_close(out_f, out_p, rtol=1e-5, atol=1e-5)
        else:
            assert torch.equal(out_f, out_p)
        for a, b in zip(g_f, g_p):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * max(1.0, b.abs().max()))
        fused.detach_state()
        plain.detach_state()


@pytest.mark.parametrize("neuron", sorted(FUSED))
def test_auto_picks_numba_for_cpu_tensors(neuron):
    assert resolve(neuron, "auto", "cpu")[0].__name__ == f"{neuron}_sequence_numba"


def test_auto_falls_back_to_torch_for_a_surrogate_without_kernel():
    class Shifted(ATan):
        def derivative(self, x):
            return super().derivative(x - 0.1)

    fused = create_neuron("lif", backend="auto", surrogate=Shifted())
    plain = create_neuron("lif", backend="torch", surrogate=Shifted())
    x = torch.randn(10, 2, 3) + 0.5
    out_f, g_f = _run(fused, x)
    out_p, g_p = _run(plain, x)
    assert torch.equal(out_f, out_p)
    torch.testing.assert_close(g_f[0], g_p[0])


def test_explicit_numba_raises_for_a_surrogate_without_kernel():
    class Shifted(ATan):
        def derivative(self, x):
            return super().derivative(x - 0.1)

    neuron = create_neuron("lif", backend="numba", surrogate=Shifted())
    with pytest.raises(backends.UnsupportedConfiguration):
        neuron(torch.randn(3, 2, 2))


def test_explicit_unavailable_backend_says_how_to_install(monkeypatch):
    missing = dataclasses.replace(backends.BACKENDS["numba"], is_available=lambda: False)
    monkeypatch.setitem(backends.BACKENDS, "numba", missing)
    monkeypatch.setattr(backends, "_RESOLVED", {})  # resolutions are cached per process
    with pytest.raises(BackendUnavailableError, match=r"pip install 'snn\[cpu\]'"):
        create_neuron("lif", backend="numba")(torch.randn(3, 2, 2))
    # auto quietly uses the reference
    assert resolve("lif", "auto", "cpu")[0].__module__ == "snn.functional.lif"


def test_cupy_backend_needs_a_cuda_tensor():
    with pytest.raises(ValueError, match="cuda"):
        create_neuron("lif", backend="cupy")(torch.randn(3, 2, 2))
