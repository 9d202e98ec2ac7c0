"""Neuron configurations and the reference comparison shared by the fused-kernel tests.

The cases are derived from the neuron descriptions (:data:`snn.fused.description.DESCRIPTIONS`)
and the surrogate registry: every fused neuron x its reset modes x every surrogate with a
kernel derivative x input-decay variant is a case, so a new neuron, surrogate or reset mode
is covered by every engine's tests automatically.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from snn.fused.autograd import fused_sequence
from snn.fused.description import DESCRIPTIONS, get_description
from snn.surrogate import SURROGATES

get_description("lif")  # registers the built-in descriptions
FUSED = {name: d for name, d in sorted(DESCRIPTIONS.items()) if d.fused}
"""Every neuron the fused kernels run."""

KERNEL_SURROGATES = sorted((n, c) for n, c in SURROGATES.items() if c.kernel_id >= 0)
"""Registered surrogates with a derivative in the kernels."""


def cases() -> Iterator[tuple[str, dict[str, Any]]]:
    """``(neuron, params)`` for every fused neuron x reset x surrogate x decay_input."""
    for neuron, desc in FUSED.items():
        base = dict(desc.test_params)
        decays = (False,) if desc.unit_decay else (False, True)
        if not desc.spiking:
            for di in decays:
                yield neuron, {**base, "decay_input": di}
            continue
        surrogates = KERNEL_SURROGATES if desc.uses_surrogate else [(None, None)]
        for reset in desc.resets:
            for k, (_, cls) in enumerate(surrogates):
                for di in decays:
                    params = {**base, "reset": reset, "detach_reset": k % 2 == 1}
                    if cls is not None:
                        params["surrogate"] = cls()
                    if not desc.unit_decay:
                        params["decay_input"] = di
                    if reset == "hard":
                        params["v_reset"] = -0.2
                    yield neuron, params


def case_id(case: tuple[str, dict[str, Any]]) -> str:
    neuron, p = case
    parts = [neuron]
    if "reset" in p:
        parts.append(p["reset"])
        if "surrogate" in p:
            parts.append(p["surrogate"].name)
        parts.append("detach" if p["detach_reset"] else "keep")
    if p.get("decay_input"):
        parts.append("decay_input")
    return "-".join(parts)


def fused_impl(engine: str, neuron: str) -> Callable[..., Any]:
    """The whole-sequence function of ``neuron`` on the fused engine ``engine``."""
    desc = DESCRIPTIONS[neuron]

    def impl(x: Tensor, state: Any = None, *, record: bool = False, **params: Any) -> Any:
        return fused_sequence(engine, desc, x, state, record, params)

    return impl


def first_params(neuron: str) -> dict[str, Any]:
    """The parameters of the first case of ``neuron``."""
    return dict(next(p for n, p in CASES if n == neuron))


CASES = list(cases())
CASE_IDS = [case_id(c) for c in CASES]


def make_input(shape: tuple[int, ...], params: dict[str, Any], dtype=torch.float32,
               device: str | torch.device = "cpu") -> Tensor:
    """Inputs that make neurons fire at moderate rates (larger with input decay)."""
    x = torch.randn(shape, dtype=torch.float64) * 0.6 + 0.45
    if params.get("decay_input"):
        x = x * 5
    return x.to(device=device, dtype=dtype)


def make_state(neuron: str, x: Tensor) -> Any:
    state = DESCRIPTIONS[neuron].state
    vals = [(torch.rand_like(x[0]) * 0.5).requires_grad_() for _ in state._fields]
    return state(*vals)


def reference(neuron: str) -> Callable[..., Any]:
    module, _, name = DESCRIPTIONS[neuron].reference.partition(":")
    return getattr(importlib.import_module(module), name)


def run_with_grads(fn: Callable[..., Any], x: Tensor, state: Any, params: dict[str, Any],
                   weights: tuple[Tensor, Tensor, list[Tensor]],
                   extra: tuple[Tensor, ...] = ()) -> tuple[Any, tuple[Tensor | None, ...]]:
    """Run ``fn`` with ``record=True``; gradients of a weighted sum of every output with
    respect to ``x``, the initial state and ``extra`` tensors."""
    out = fn(x, state, record=True, **params)
    w_s, w_v, w_state = weights
    loss = (out.spikes * w_s).sum() + (out.v * w_v).sum()
    for s, w in zip(out.state, w_state):
        loss = loss + (s * w).sum()
    inputs = [x, *(state or ()), *extra]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return out, grads


def compare_with_reference(impl: Callable[..., Any], neuron: str, params: dict[str, Any],
                           x: Tensor, state: Any, rtol: float = 1e-5,
                           extra: tuple[Tensor, ...] = ()) -> None:
    """Spikes equal the reference exactly; membranes, states and gradients within ``rtol``
    (relative to each tensor's scale)."""
    g = torch.Generator().manual_seed(1)
    w_s = torch.randn(x.shape, generator=g, dtype=torch.float64).to(x)
    w_v = torch.randn(x.shape, generator=g, dtype=torch.float64).to(x)
    fields = DESCRIPTIONS[neuron].state_fields
    w_state = [torch.randn(x.shape[1:], generator=g, dtype=torch.float64).to(x) for _ in fields]
    ref_out, ref_grads = run_with_grads(reference(neuron), x, state, params,
                                        (w_s, w_v, w_state), extra)
    out, grads = run_with_grads(impl, x, state, params, (w_s, w_v, w_state), extra)
    if not DESCRIPTIONS[neuron].spiking:
        _close(out.spikes, ref_out.spikes, rtol, "output")
    else:
        assert torch.equal(out.spikes, ref_out.spikes), "spikes differ from the reference"
    _close(out.v, ref_out.v, rtol, "membrane trace")
    for name, a, b in zip(fields, out.state, ref_out.state):
        _close(a, b, rtol, f"final state {name}")
    names = ["x", *(f"state.{f}" for f in (fields if state is not None else ())),
             *(f"extra{i}" for i in range(len(extra)))]
    for name, a, b in zip(names, grads, ref_grads):
        if b is None:
            assert a is None or not bool(a.abs().sum()), f"gradient of {name} should be zero"
            continue
        assert a is not None, f"no gradient for {name}"
        _close(a, b, rtol, f"gradient of {name}")


def _close(a: Tensor, b: Tensor, rtol: float, what: str) -> None:
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    scale = float(b.detach().abs().max()) if b.numel() else 0.0
    err = float((a.detach() - b.detach()).abs().max()) if b.numel() else 0.0
    assert err <= rtol * max(scale, 1.0), f"{what}: max error {err:.3g} (scale {scale:.3g})"


def alif_decay_gradients(engine: str, reset: str) -> tuple[Tensor, Tensor]:
    """``(engine's, reference's)`` gradient of a per-neuron ALIF membrane decay, called on the
    operator directly (``make_spec`` takes only a float decay for ALIF today). Each step's
    :math:`v_{t-1}` must be rebuilt with the adapted threshold of step ``t-1``."""
    from snn.functional.alif import alif_step
    from snn.fused.autograd import FusedSpec, _kernel_surrogate
    from snn.fused.description import FIRE_BINARY, KIND_ALIF, RESET_CODES
    from snn.surrogate import get_surrogate

    g = torch.Generator().manual_seed(3)
    T, N, rho, gamma = 16, 48, 0.9, 1.8
    x = torch.randn(T, N, generator=g, dtype=torch.float64) * 1.5 + 0.8
    beta = torch.rand(N, generator=g, dtype=torch.float64) * 0.5 + 0.4
    w = torch.randn(T, N, generator=g, dtype=torch.float64)
    ref_beta = beta.clone().requires_grad_()
    state, out = None, []
    for t in range(T):
        s, state = alif_step(x[t], state, beta=ref_beta, beta_adapt=rho, adapt_scale=gamma,
                             reset=reset, surrogate="atan")
        out.append(s)
    (torch.stack(out) * w).sum().backward()
    sid, sg = _kernel_surrogate(get_surrogate("atan"))
    spec = FusedSpec(KIND_ALIF, FIRE_BINARY, RESET_CODES[reset], surrogate_id=sid, sg=sg,
                     beta_adapt=rho, c_adapt=1.0 - rho, adapt_scale=gamma)
    fused_beta = beta.clone().requires_grad_()
    empty = x.new_empty(0)  # zero initial state
    c, thr = torch.ones(N, dtype=x.dtype), torch.ones(1, dtype=x.dtype)  # c per neuron as beta
    spikes = torch.ops.snn.fused_forward(engine, spec.ints(), spec.floats(), False, x, empty,
                                         empty, empty, fused_beta, c, thr)[0]
    assert torch.equal(spikes, torch.stack(out)), "spikes differ from the reference"
    assert 0.05 < float(spikes.detach().mean()) < 0.6, "too few or too many spikes to test"
    (spikes * w).sum().backward()
    return fused_beta.grad, ref_beta.grad
