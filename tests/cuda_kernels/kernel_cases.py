"""Neuron configurations and the reference comparison shared by the fused-kernel tests.

Every neuron x reset mode x registered surrogate x input-decay variant is a case, so a new
surrogate or reset mode is covered by every backend's tests automatically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from snn.backends import IMPLEMENTATIONS, _load
from snn.functional import RESET_MODES
from snn.functional.alif import ALIFState
from snn.functional.cuba import CubaLIFState
from snn.functional.lif import LIFState
from snn.surrogate import SURROGATES

BASE_PARAMS: dict[str, dict[str, Any]] = {
    "if": {},
    "lif": {"beta": 0.85},
    "li": {"beta": 0.8},
    "cuba_lif": {"alpha": 0.7, "beta": 0.85},
    "alif": {"beta": 0.85, "beta_adapt": 0.9, "adapt_scale": 0.5},
}
STATE_TYPES = {"if": LIFState, "lif": LIFState, "li": LIFState, "cuba_lif": CubaLIFState,
               "alif": ALIFState}


def cases() -> Iterator[tuple[str, dict[str, Any]]]:
    """``(neuron, params)`` for every neuron x reset x surrogate x decay_input."""
    for neuron, base in BASE_PARAMS.items():
        decays = (False,) if neuron == "if" else (False, True)
        if neuron == "li":
            for di in decays:
                yield neuron, {**base, "decay_input": di}
            continue
        for reset in RESET_MODES:
            for k, (_, cls) in enumerate(sorted(SURROGATES.items())):
                for di in decays:
                    params = {**base, "reset": reset, "surrogate": cls(),
                              "detach_reset": k % 2 == 1}
                    if neuron != "if":
                        params["decay_input"] = di
                    if reset == "hard":
                        params["v_reset"] = -0.2
                    yield neuron, params


def case_id(case: tuple[str, dict[str, Any]]) -> str:
    neuron, p = case
    parts = [neuron]
    if "reset" in p:
        parts += [p["reset"], p["surrogate"].name, "detach" if p["detach_reset"] else "keep"]
    if p.get("decay_input"):
        parts.append("decay_input")
    return "-".join(parts)


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
    fields = STATE_TYPES[neuron]._fields
    vals = [(torch.rand_like(x[0]) * 0.5).requires_grad_() for _ in fields]
    return STATE_TYPES[neuron](*vals)


def reference(neuron: str) -> Callable[..., Any]:
    return _load(IMPLEMENTATIONS[(neuron, "torch")])


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
    fields = STATE_TYPES[neuron]._fields
    w_state = [torch.randn(x.shape[1:], generator=g, dtype=torch.float64).to(x) for _ in fields]
    ref_out, ref_grads = run_with_grads(reference(neuron), x, state, params,
                                        (w_s, w_v, w_state), extra)
    out, grads = run_with_grads(impl, x, state, params, (w_s, w_v, w_state), extra)
    if neuron == "li":
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
