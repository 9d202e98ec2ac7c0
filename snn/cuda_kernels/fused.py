"""Device-independent plumbing of the fused whole-sequence kernels.

The CUDA kernels (:mod:`snn.cuda_kernels.ops`) and the CPU kernels (:mod:`snn.cpu_kernels`)
run the same computation: the time loop of one neuron family over ``[T, N]`` (``N`` = every
element of one step ``[B, ...]``), forward in one pass, backward in one reverse pass. This
module turns the keyword parameters of the functional step (:mod:`snn.functional`) into a
hashable :class:`FusedSpec` plus per-neuron parameter vectors, and wraps an *engine* (the
device-specific pair of forward/backward launchers) in one ``torch.autograd.Function``.

Every neuron is one instance of the general update (see ``neuron.cuh`` for the same in C++):

.. math::
    i_t &= \\alpha\\, i_{t-1} + x_t \\quad(\\text{CuBa; otherwise } i_t = x_t) \\\\
    h_t &= \\beta\\, v_{t-1} + c\\, i_t, \\qquad
        c = 1-\\beta \\text{ with decay\\_input, else } 1 \\\\
    \\vartheta_t &= \\vartheta + \\gamma\\, a_{t-1} \\quad(\\text{ALIF; otherwise } \\vartheta) \\\\
    s_t &= \\Theta(h_t - \\vartheta_t), \\qquad v_t = \\operatorname{reset}(h_t, s_t) \\\\
    a_t &= \\rho\\, a_{t-1} + (1-\\rho)\\, s_t \\quad(\\text{ALIF})

IF is LIF with :math:`\\beta = c = 1`; LI outputs :math:`v_t = h_t` and never fires.

What backward keeps per neuron and step depends on the engine. The CUDA engine keeps the
pre-reset membrane :math:`h_t` in the input's dtype (spikes and the post-reset membrane are
recomputed from it), plus :math:`a_{t-1}` for ALIF, plus the input :math:`x_t` only for a
learnable decay with ``decay_input=True``. The CPU engine keeps only the input and re-runs the
recurrence block by block in cache during backward (``Engine.recompute``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from snn.backends import UnsupportedConfiguration
from snn.functional._common import (
    SequenceOutput,
    check_decay,
    check_reset,
    check_sequence,
    check_state_tensor,
    check_threshold,
)
from snn.functional.alif import ALIFState
from snn.functional.cuba import CubaLIFState
from snn.functional.lif import LIFState
from snn.surrogate import SURROGATES, Surrogate, get_surrogate

__all__ = [
    "KERNEL_SURROGATES",
    "KIND_ALIF",
    "KIND_CUBA",
    "KIND_LI",
    "KIND_LIF",
    "RESET_CODES",
    "Engine",
    "FusedSpec",
    "bytes_kept_per_step",
    "fused_sequence",
    "param_dtype",
    "surrogate_constants",
]

KIND_LIF, KIND_LI, KIND_CUBA, KIND_ALIF = 0, 1, 2, 3
"""Neuron family codes shared with ``neuron.cuh`` (IF runs as LIF with unit decay)."""

RESET_CODES = {"subtract": 0, "hard": 1, "none": 2}
"""Reset mode codes shared with ``neuron.cuh``."""

KERNEL_SURROGATES: dict[int, str] = {
    0: "atan",
    1: "sigmoid",
    2: "fast_sigmoid",
    3: "soft_sign",
    4: "triangle",
    5: "piecewise_quadratic",
    6: "rectangle",
    7: "erf",
    8: "straight_through",
}
"""Surrogate ``kernel_id`` -> registry name, for the derivatives written in the kernels."""

# Keyword parameters (with defaults) of each functional step; ``...`` marks a required one.
_STEP_PARAMS: dict[str, dict[str, Any]] = {
    "if": {},
    "lif": {"beta": ..., "decay_input": False},
    "li": {"beta": ..., "decay_input": False},
    "cuba_lif": {"alpha": ..., "beta": ..., "decay_input": False},
    "alif": {"beta": ..., "beta_adapt": ..., "adapt_scale": 1.8, "decay_input": False},
}
_SPIKE_PARAMS = {
    "threshold": 1.0,
    "reset": "subtract",
    "v_reset": 0.0,
    "surrogate": None,
    "detach_reset": False,
}
_KINDS = {"if": KIND_LIF, "lif": KIND_LIF, "li": KIND_LI, "cuba_lif": KIND_CUBA, "alif": KIND_ALIF}


def surrogate_constants(kernel_id: int, alpha: float) -> tuple[float, float, float]:
    """Constants ``(k0, k1, k2)`` of a surrogate derivative as the kernels evaluate it.

    They are computed in double precision exactly as the Python expressions of
    :mod:`snn.surrogate` compute their scalar factors, so that a float32 kernel performs the
    same float32 operations as the reference.
    """
    a = float(alpha)
    table = {
        0: (a / 2, math.pi / 2 * a, 0.0),  # (a/2) / (1 + (k1 z)^2)
        1: (a, 0.0, 0.0),  # a s (1 - s), s = sigmoid(a z)
        2: (a, 0.0, 0.0),  # 1 / (1 + a|z|)^2
        3: (a, 0.0, 0.0),  # a / (2 (1 + a|z|)^2)
        4: (a, a**2, 0.0),  # max(0, a - a^2 |z|)
        5: (0.75 * a, a, 0.0),  # 0.75 a max(0, 1 - (a z)^2)
        6: (a, 0.5 / a, 0.0),  # a if |z| < 0.5 / a
        7: (a / math.sqrt(2 * math.pi), a, -0.5),  # k0 exp(-0.5 (a z)^2)
        8: (a, 0.0, 0.0),  # a
    }
    try:
        return table[kernel_id]
    except KeyError:
        raise UnsupportedConfiguration(f"no fused kernel for surrogate id {kernel_id}") from None


@dataclass(frozen=True)
class FusedSpec:
    """Everything about a fused run that is the same for every neuron (hashable: it keys the
    kernel caches).

    Attributes:
        kind: neuron family (``KIND_*``).
        reset: reset code (:data:`RESET_CODES`).
        detach_reset: stop the gradient through the reset term.
        surrogate_id: ``kernel_id`` of the surrogate.
        sg: surrogate constants of :func:`surrogate_constants`.
        v_reset: membrane value after a hard reset.
        alpha: synaptic decay (CuBa).
        beta_adapt: adaptation decay :math:`\\rho` (ALIF).
        c_adapt: :math:`1-\\rho` as the reference rounds it (ALIF).
        adapt_scale: :math:`\\gamma` (ALIF).
        decay_input: the input is scaled by :math:`1-\\beta`.
    """

    kind: int
    reset: int = 0
    detach_reset: bool = False
    surrogate_id: int = 0
    sg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    v_reset: float = 0.0
    alpha: float = 0.0
    beta_adapt: float = 0.0
    c_adapt: float = 0.0
    adapt_scale: float = 0.0
    decay_input: bool = False

    @property
    def spiking(self) -> bool:
        """Whether the neuron fires (everything but LI)."""
        return self.kind != KIND_LI


class Engine(Protocol):
    """A device-specific pair of fused launchers (see :mod:`snn.cpu_kernels` for the CPU one).

    ``forward(spec, x, v0, i0, a0, beta, c, thr, record)`` takes ``x`` ``[T, N]`` contiguous,
    states ``[N]``, per-neuron vectors ``[N]`` or ``[1]`` (one value for all), and returns
    ``(spikes, h, a_prev, v_rec, vT, iT, aT)`` with ``None`` for what the neuron lacks (and for
    ``h``/``a_prev`` when the engine recomputes them).

    ``recompute``: backward re-runs the forward recurrence from the saved input and initial
    state (nothing else is kept); otherwise forward's ``h`` (and ``a_prev``) are kept.

    ``backward(spec, saved, g_s, g_vrec, g_vT, g_iT, g_aT, like, x_shape, want_beta,
    want_thr)`` (``saved``: the kept tensors by name plus ``beta``, ``c``, ``thr``; ``like``: an
    empty tensor of the input's dtype and device) returns ``(gx, gv0, gi0, ga0, gbeta, gthr)``, the
    last two per neuron ``[N]`` (or ``None`` when not needed).
    """

    name: str
    dtypes: tuple[torch.dtype, ...]
    recompute: bool

    def forward(self, spec: FusedSpec, *args: Any) -> tuple[Tensor | None, ...]: ...

    def backward(self, spec: FusedSpec, *args: Any) -> tuple[Tensor | None, ...]: ...


def bytes_kept_per_step(spec: FusedSpec, dtype: torch.dtype, learn_decay: bool = False,
                        recompute: bool = False) -> int:
    """Bytes the fused backward keeps per neuron and time step, beyond what the caller holds.

    A recomputing engine keeps only a reference to the input (``x``): that costs
    ``sizeof(dtype)`` when nothing else would keep the input alive, and nothing otherwise."""
    size = torch.empty((), dtype=dtype).element_size()
    if recompute:
        return size
    n = 0 if spec.kind == KIND_LI else 1  # h (LI needs no membrane: its backward is linear)
    if spec.kind == KIND_ALIF:
        n += 1  # a_{t-1}
    if learn_decay:
        n = max(n, 1) + (1 if spec.decay_input else 0)
    return n * size


def _parse_params(neuron: str, params: dict[str, Any]) -> dict[str, Any]:
    known = dict(_STEP_PARAMS[neuron])
    if neuron != "li":
        known.update(_SPIKE_PARAMS)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise TypeError(f"{neuron}_step() got unexpected keyword arguments {unknown}")
    out = {**known, **params}
    missing = sorted(k for k, v in out.items() if v is ...)
    if missing:
        raise TypeError(f"{neuron}_step() missing required keyword arguments {missing}")
    return out


def _kernel_surrogate(surrogate: Surrogate) -> tuple[int, tuple[float, float, float]]:
    cls = type(surrogate)
    if SURROGATES.get(cls.name) is not cls or KERNEL_SURROGATES.get(cls.kernel_id) != cls.name:
        raise UnsupportedConfiguration(
            f"surrogate {cls.__name__} has no derivative written in the fused kernels"
        )
    (alpha,) = surrogate.kernel_params
    return cls.kernel_id, surrogate_constants(cls.kernel_id, alpha)


def _scalar(name: str, value: Any) -> float:
    if isinstance(value, Tensor):
        raise UnsupportedConfiguration(f"fused kernels take {name} as a float, got a tensor")
    return float(value)


def param_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype of per-neuron parameters and their gradients: the kernels' compute type (float64
    for float64 inputs, float32 otherwise, so half-precision runs keep float32 parameters)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _per_neuron(
    name: str, value: float | Tensor, x: Tensor, step_shape: torch.Size
) -> tuple[Tensor, bool]:
    """``value`` as a vector in the compute dtype: ``[1]`` for one value, else ``[N]``."""
    dtype = param_dtype(x.dtype)
    if not isinstance(value, Tensor):
        return torch.tensor([float(value)], dtype=dtype, device=x.device), False
    if value.device != x.device or not value.is_floating_point():
        raise UnsupportedConfiguration(
            f"{name} must be a floating-point tensor on {x.device} for the fused kernels"
        )
    if torch.broadcast_shapes(value.shape, step_shape) != step_shape:
        raise UnsupportedConfiguration(
            f"{name} of shape {tuple(value.shape)} does not broadcast to one step "
            f"{tuple(step_shape)}"
        )
    value = value.to(dtype)
    if value.numel() == 1:
        return value.reshape(1), value.requires_grad
    return value.expand(step_shape).reshape(-1), value.requires_grad


class _FusedFunction(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        engine: Engine,
        spec: FusedSpec,
        record: bool,
        x: Tensor,
        v0: Tensor,
        i0: Tensor,
        a0: Tensor,
        beta: Tensor,
        c: Tensor,
        thr: Tensor,
    ) -> tuple[Tensor, ...]:
        spikes, h, a_prev, v_rec, v_t, i_t, a_t = engine.forward(
            spec, x, v0, i0, a0, beta, c, thr, record
        )
        learn_beta = ctx.needs_input_grad[7]
        if engine.recompute:  # backward re-runs the forward recurrence from the input
            keep = {"x": x, "v0": v0, "i0": i0, "a0": a0}
        else:
            keep = {
                "h": h if spec.kind != KIND_LI or learn_beta else None,
                "a_prev": a_prev,
                "x": x if learn_beta and spec.decay_input else None,
                "v0": v0 if learn_beta else None,
            }
        ctx.save_for_backward(*keep.values(), beta, c, thr)
        ctx.keys = tuple(keep)
        ctx.engine, ctx.spec = engine, spec
        ctx.shapes = (x.shape, v0.shape)
        ctx.like = x.new_empty(0)
        outs = []
        for o in (spikes, v_rec, v_t, i_t, a_t):
            if o is None:
                o = x.new_empty(0)
                ctx.mark_non_differentiable(o)
            outs.append(o)
        ctx.set_materialize_grads(False)
        return tuple(outs)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g_s: Tensor | None, g_vrec: Tensor | None, g_vt: Tensor | None,
                 g_it: Tensor | None, g_at: Tensor | None) -> tuple[Tensor | None, ...]:
        *kept, beta, c, thr = ctx.saved_tensors
        saved = dict(zip(ctx.keys, kept))
        saved.update(beta=beta, c=c, thr=thr)
        spec: FusedSpec = ctx.spec
        needs = ctx.needs_input_grad
        x_shape, n_shape = ctx.shapes
        like = ctx.like

        def zeros_n(g: Tensor | None) -> Tensor:
            return g.contiguous() if g is not None else like.new_zeros(n_shape)

        want_beta, want_thr = needs[7], needs[9]
        gx, gv0, gi0, ga0, gbeta, gthr = ctx.engine.backward(
            spec,
            saved,
            g_s,
            g_vrec if g_vrec is not None and g_vrec.numel() else None,
            zeros_n(g_vt),
            zeros_n(g_it if spec.kind == KIND_CUBA else None),
            zeros_n(g_at if spec.kind == KIND_ALIF else None),
            like, x_shape, want_beta, want_thr,
        )
        if want_beta and gbeta is not None:
            gbeta = gbeta.to(beta.dtype)
            gbeta = gbeta.sum().reshape(1) if beta.numel() == 1 else gbeta
        if want_thr and gthr is not None:
            gthr = gthr.to(thr.dtype)
            gthr = gthr.sum().reshape(1) if thr.numel() == 1 else gthr
        return (
            None, None, None,
            gx if needs[3] else None,
            gv0 if needs[4] else None,
            gi0 if needs[5] and spec.kind == KIND_CUBA else None,
            ga0 if needs[6] and spec.kind == KIND_ALIF else None,
            gbeta if want_beta else None,
            None,
            gthr if want_thr else None,
        )


def _state_fields(neuron: str) -> tuple[str, ...]:
    return {"cuba_lif": ("i", "v"), "alif": ("v", "a")}.get(neuron, ("v",))


def fused_sequence(
    engine: Engine,
    neuron: str,
    x: Tensor,
    state: Any,
    record: bool,
    params: dict[str, Any],
) -> SequenceOutput:
    """Run ``neuron`` over ``x`` (``[T, B, ...]``) with ``engine``; same contract as the
    reference ``*_sequence`` functions of :mod:`snn.functional`.

    Raises:
        UnsupportedConfiguration: for what the kernels do not cover (a dtype, a surrogate
            without a kernel derivative, a tensor decay for CuBa/ALIF, ...).
        ValueError, TypeError: for invalid parameters, as the reference raises them.
    """
    check_sequence(x)
    if x.dtype not in engine.dtypes:
        raise UnsupportedConfiguration(f"{engine.name} kernels do not take dtype {x.dtype}")
    p = _parse_params(neuron, params)
    kind = _KINDS[neuron]
    fields: dict[str, Any] = {"kind": kind, "decay_input": bool(p.get("decay_input", False))}
    if neuron != "if":
        check_decay("beta", p["beta"])
    if kind != KIND_LI:
        check_threshold(p["threshold"])
        check_reset(p["reset"])
        sid, sg = _kernel_surrogate(get_surrogate(p["surrogate"]))
        v_reset = _scalar("v_reset", p["v_reset"])
        if not math.isfinite(v_reset):
            raise ValueError(f"v_reset must be finite, got {v_reset}")
        fields.update(
            reset=RESET_CODES[p["reset"]],
            detach_reset=bool(p["detach_reset"]),
            surrogate_id=sid,
            sg=sg,
            v_reset=v_reset,
        )
    if kind == KIND_CUBA:
        check_decay("alpha", p["alpha"])
        fields["alpha"] = _scalar("alpha", p["alpha"])
        _scalar("beta", p["beta"])
    if kind == KIND_ALIF:
        check_decay("beta_adapt", p["beta_adapt"])
        rho = _scalar("beta_adapt", p["beta_adapt"])
        gamma = _scalar("adapt_scale", p["adapt_scale"])
        if gamma < 0:
            raise ValueError(f"adapt_scale must be >= 0, got {gamma}")
        _scalar("beta", p["beta"])
        fields.update(beta_adapt=rho, c_adapt=1.0 - rho, adapt_scale=gamma)
    spec = FusedSpec(**fields)

    T = x.shape[0]
    step_shape = x.shape[1:]
    N = math.prod(step_shape)
    xs = x.reshape(T, N).contiguous()

    beta_value = 1.0 if neuron == "if" else p["beta"]
    beta, _ = _per_neuron("beta", beta_value, x, step_shape)
    if isinstance(beta_value, Tensor):
        c = (1 - beta).detach() if spec.decay_input else torch.ones_like(beta).detach()
    else:
        c_value = 1.0 - float(beta_value) if spec.decay_input else 1.0
        c = torch.tensor([c_value], dtype=beta.dtype, device=x.device)
    thr_value = p.get("threshold", 1.0)
    thr, _ = _per_neuron("threshold", thr_value, x, step_shape)

    names = _state_fields(neuron)
    if state is None:
        given = {}
    else:
        given = {
            f: check_state_tensor(f, getattr(state, f), x[0]).reshape(N).contiguous()
            for f in names
        }
    zeros = xs.new_zeros(N)
    v0 = given.get("v", zeros)
    i0 = given.get("i", zeros)
    a0 = given.get("a", zeros)
    spikes, v_rec, v_t, i_t, a_t = _FusedFunction.apply(
        engine, spec, bool(record), xs, v0, i0, a0, beta, c, thr
    )
    spikes = spikes.reshape(x.shape)
    v_rec = v_rec.reshape(x.shape) if record else None
    v_t = v_t.reshape(step_shape)
    if neuron == "cuba_lif":
        new_state: Any = CubaLIFState(i_t.reshape(step_shape), v_t)
    elif neuron == "alif":
        new_state = ALIFState(v_t, a_t.reshape(step_shape))
    else:
        new_state = LIFState(v_t)
    return SequenceOutput(spikes, new_state, v_rec)
