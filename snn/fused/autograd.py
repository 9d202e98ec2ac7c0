"""A neuron description run on a fused *engine*, as PyTorch custom operators.

The CPU engine (:mod:`snn.cpu_kernels.ops`) and the CUDA engine (:mod:`snn.cuda_kernels.ops`)
run the same computation: the time loop of one neuron over ``[T, N]`` (``N`` = every element
of one step ``[B, ...]``), forward in one pass, backward in one reverse pass. This module turns
the keyword parameters of a neuron's step into a :class:`FusedSpec` plus per-neuron parameter
vectors and calls the engine through two operators, ``snn::fused_forward`` and
``snn::fused_backward`` (:mod:`torch.library`), with registered autograd and fake-tensor
implementations, so ``torch.compile(..., fullgraph=True)`` traces through them.

What backward keeps per neuron and step depends on the engine. The CUDA engine keeps the
pre-reset membrane :math:`h_t` in the input's dtype (spikes and the post-reset membrane are
recomputed from it), plus :math:`a_{t-1}` for ALIF, plus the input :math:`x_t` only for a
learnable decay with ``decay_input=True``. The CPU engine keeps only the input and re-runs the
recurrence block by block in cache during backward (``Engine.recompute``).
"""

from __future__ import annotations

import functools
import importlib
import math
import sys
from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor

from snn.backends import UnsupportedConfiguration
from snn.functional._common import (
    SequenceOutput,
    check_decay,
    check_reset,
    check_sequence,
    check_state_tensor,
    check_threshold,
)
from snn.fused.description import (
    FIRE_MULTILEVEL,
    KIND_ALIF,
    KIND_CUBA,
    KIND_LI,
    REQUIRED,
    RESET_CODES,
    NeuronDescription,
)
from snn.surrogate import SURROGATES, Surrogate, get_surrogate

__all__ = [
    "ENGINES",
    "BackwardResult",
    "Engine",
    "ForwardResult",
    "FusedSpec",
    "Saved",
    "bytes_kept_per_step",
    "fused_sequence",
    "get_engine",
    "param_dtype",
]


class FusedSpec(NamedTuple):
    """Everything about a fused run that is the same for every neuron.

    Attributes:
        kind: integration code (``KIND_*`` of :mod:`snn.fused.description`).
        fire: spike-rule code (``FIRE_*``).
        reset: reset code (:data:`~snn.fused.description.RESET_CODES`).
        detach_reset: stop the gradient through the reset term.
        surrogate_id: ``kernel_id`` of the surrogate.
        decay_input: the input is scaled by :math:`1-\\beta`.
        sg: the surrogate's kernel constants ``(k0, k1, k2)``.
        v_reset: membrane value after a hard reset.
        alpha: synaptic decay (CuBa).
        beta_adapt: adaptation decay :math:`\\rho` (ALIF).
        c_adapt: :math:`1-\\rho` as the reference rounds it (ALIF).
        adapt_scale: :math:`\\gamma` (ALIF).
        levels: the largest integer spike :math:`D` (multi-level).
    """

    kind: int
    fire: int = 0
    reset: int = 0
    detach_reset: bool = False
    surrogate_id: int = 0
    decay_input: bool = False
    sg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    v_reset: float = 0.0
    alpha: float = 0.0
    beta_adapt: float = 0.0
    c_adapt: float = 0.0
    adapt_scale: float = 0.0
    levels: float = 0.0

    @property
    def spiking(self) -> bool:
        """Whether the neuron fires (everything but LI)."""
        return self.kind != KIND_LI

    def ints(self) -> list[int]:
        """The integer fields, as the custom operators take them."""
        return [self.kind, self.fire, self.reset, int(self.detach_reset), self.surrogate_id,
                int(self.decay_input)]

    def floats(self) -> list[float]:
        """The float fields, as the custom operators take them."""
        return [*self.sg, self.v_reset, self.alpha, self.beta_adapt, self.c_adapt,
                self.adapt_scale, self.levels]

    @classmethod
    def from_lists(cls, ints: list[int], floats: list[float]) -> FusedSpec:
        """Inverse of :meth:`ints` / :meth:`floats`."""
        kind, fire, reset, detach, sid, decay_input = ints
        k0, k1, k2, v_reset, alpha, rho, c_rho, gamma, levels = floats
        return cls(kind, fire, reset, bool(detach), sid, bool(decay_input), (k0, k1, k2),
                   v_reset, alpha, rho, c_rho, gamma, levels)


class ForwardResult(NamedTuple):
    """What an engine's forward returns (``None`` for what the neuron or engine lacks).

    Attributes:
        spikes: ``[T, N]`` spikes (the membrane for LI).
        v_rec: ``[T, N]`` post-reset membranes when recorded.
        vT: ``[N]`` final membrane.
        iT: ``[N]`` final synaptic current (CuBa).
        aT: ``[N]`` final adaptation (ALIF).
        h: ``[T, N]`` pre-reset membranes kept for backward (non-recomputing engines).
        a_prev: ``[T, N]`` adaptation before each step kept for backward (ALIF).
    """

    spikes: Tensor
    v_rec: Tensor | None
    vT: Tensor
    iT: Tensor | None
    aT: Tensor | None
    h: Tensor | None = None
    a_prev: Tensor | None = None


class Saved(NamedTuple):
    """What backward receives from forward (``None`` for what was not kept)."""

    h: Tensor | None
    a_prev: Tensor | None
    x: Tensor | None
    v0: Tensor | None
    i0: Tensor | None
    a0: Tensor | None
    beta: Tensor
    c: Tensor
    thr: Tensor


class BackwardResult(NamedTuple):
    """What an engine's backward returns: input and initial-state gradients, and per-neuron
    ``[N]`` gradient sums of the decay and the threshold (``None`` when not wanted)."""

    gx: Tensor
    gv0: Tensor
    gi0: Tensor
    ga0: Tensor
    gbeta: Tensor | None
    gthr: Tensor | None


class Engine(Protocol):
    """A device-specific pair of fused launchers.

    ``forward(spec, x, v0, i0, a0, beta, c, thr, record)`` takes ``x`` ``[T, N]``
    contiguous, states ``[N]``, per-neuron vectors ``[N]`` or ``[1]`` (one value for all).

    ``backward(spec, saved, g_s, g_vrec, g_vT, g_iT, g_aT, want_beta, want_thr)`` takes the
    :class:`Saved` tensors and the output gradients (``g_s``/``g_vrec`` ``[T, N]`` or
    ``None``, possibly expanded scalars; the others ``[N]``).

    ``recompute``: backward re-runs the forward recurrence from the saved input and initial
    state (nothing else is kept); otherwise forward's ``h`` (and ``a_prev``) are kept.
    """

    name: str
    dtypes: tuple[torch.dtype, ...]
    devices: tuple[str, ...]
    recompute: bool

    def forward(self, spec: FusedSpec, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor,
                beta: Tensor, c: Tensor, thr: Tensor, record: bool) -> ForwardResult: ...

    def backward(self, spec: FusedSpec, saved: Saved, g_s: Tensor | None,
                 g_vrec: Tensor | None, g_vt: Tensor, g_it: Tensor, g_at: Tensor,
                 want_beta: bool, want_thr: bool) -> BackwardResult: ...


ENGINES: dict[str, Any] = {
    "numba": "snn.cpu_kernels.ops:ENGINE",
    "cupy": "snn.cuda_kernels.ops:ENGINE",
}
"""Fused engines by name: an engine, or ``"module:attribute"`` loaded on first use."""


def get_engine(name: str) -> Engine:
    """The engine registered as ``name`` in :data:`ENGINES`.

    Raises:
        ValueError: for an unknown name.
    """
    try:
        entry = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown fused engine {name!r}; expected one of {sorted(ENGINES)}"
                         ) from None
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        ENGINES[name] = entry
    return entry


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


def param_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype of per-neuron parameters and their gradients: the kernels' compute type (float64
    for float64 inputs, float32 otherwise, so half-precision runs keep float32 parameters)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# --------------------------------------------------------------------------------------------
# the custom operators


def _empty(x: Tensor) -> Tensor:
    return x.new_empty(0)


def _or_zeros(t: Tensor, n: int) -> Tensor:
    """``t``, or ``n`` zeros where ``t`` is empty: the operators take an empty tensor for an
    all-zero initial state or output gradient and make the zeros inside, so that a compiled
    graph holds no kernel of its own that only fills memory. On the CPU, zeros of 1 MiB and
    more (N >= 262144 float32 neurons) come from :mod:`snn.cpu_kernels.pool`: a fresh
    allocation of that size faults in every page on each call."""
    if t.numel():
        return t
    if t.device.type == "cpu":
        from snn.cpu_kernels import pool

        pooled = pool.take((n,), t.dtype)
        if pooled is not None:
            return pooled.zero_()
    return t.new_zeros(n)


_LIB = torch.library.Library("snn", "DEF")
"""The ``snn`` operator namespace. The operators are defined with the plain dispatcher API
(not ``torch.library.custom_op``, whose first call imports ``torch._dynamo``: seconds)."""

_LIB.define(
    "fused_forward(str engine, int[] ispec, float[] fspec, bool record, Tensor x, Tensor v0, "
    "Tensor i0, Tensor a0, Tensor beta, Tensor c, Tensor thr) "
    "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)"
)
_LIB.define(
    "fused_backward(str engine, int[] ispec, float[] fspec, bool want_beta, bool want_thr, "
    "Tensor h, Tensor a_prev, Tensor x, Tensor v0, Tensor i0, Tensor a0, Tensor beta, "
    "Tensor c, Tensor thr, Tensor g_s, Tensor g_vrec, Tensor g_vt, Tensor g_it, Tensor g_at) "
    "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)"
)


def _forward_op(engine: str, ispec: list[int], fspec: list[float], record: bool, x: Tensor,
                v0: Tensor, i0: Tensor, a0: Tensor, beta: Tensor, c: Tensor, thr: Tensor
                ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(spikes, v_rec, vT, iT, aT, h, a_prev)``, empty where absent. An empty initial
    state stands for zeros."""
    spec = FusedSpec.from_lists(ispec, fspec)
    n = x.shape[1]
    r = get_engine(engine).forward(spec, x, _or_zeros(v0, n), _or_zeros(i0, n),
                                   _or_zeros(a0, n), beta, c, thr, record)
    return tuple(t if t is not None else _empty(x) for t in r)  # type: ignore[return-value]


def _not_traced(fn: Any) -> Any:
    """``fn`` kept out of TorchDynamo's frame tracing when it runs inside compiled code (the
    engines' Python is not graph material); without ``torch._dynamo`` loaded, ``fn`` as is,
    so a first eager call does not pay for importing it."""
    disabled: list[Any] = []

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        if "torch._dynamo" not in sys.modules:
            return fn(*args)
        if not disabled:
            disabled.append(torch._disable_dynamo(fn, recursive=True))
        return disabled[0](*args)

    return wrapper


_LIB.impl("fused_forward", _not_traced(_forward_op), "CompositeExplicitAutograd")


@torch.library.register_fake("snn::fused_forward", lib=_LIB)
def _forward_fake(engine: str, ispec: list[int], fspec: list[float], record: bool, x: Tensor,
                  v0: Tensor, i0: Tensor, a0: Tensor, beta: Tensor, c: Tensor, thr: Tensor
                  ) -> tuple[Tensor, ...]:
    kind = ispec[0]
    keeps = not get_engine(engine).recompute
    n = x.shape[1]
    return (
        torch.empty_like(x),
        torch.empty_like(x) if record else _empty(x),
        x.new_empty(n),
        x.new_empty(n) if kind == KIND_CUBA else _empty(x),
        x.new_empty(n) if kind == KIND_ALIF else _empty(x),
        torch.empty_like(x) if keeps and kind != KIND_LI else _empty(x),
        torch.empty_like(x) if keeps and kind == KIND_ALIF else _empty(x),
    )


def _backward_op(engine: str, ispec: list[int], fspec: list[float], want_beta: bool,
                 want_thr: bool, h: Tensor, a_prev: Tensor, x: Tensor, v0: Tensor, i0: Tensor,
                 a0: Tensor, beta: Tensor, c: Tensor, thr: Tensor, g_s: Tensor, g_vrec: Tensor,
                 g_vt: Tensor, g_it: Tensor, g_at: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(gx, gv0, gi0, ga0, gbeta, gthr)``; empty tensors stand for absent ones, and for
    zeros where a state or a final-state gradient is needed (see :func:`_width`)."""
    spec = FusedSpec.from_lists(ispec, fspec)
    n = _width(h, x, g_s, g_vrec, g_vt, g_it, g_at)

    def opt(t: Tensor) -> Tensor | None:
        return t if t.numel() else None

    if x.numel() or want_beta:  # the initial state is used: empty stands for zeros
        v0, i0, a0 = _or_zeros(v0, n), _or_zeros(i0, n), _or_zeros(a0, n)
    saved = Saved(opt(h), opt(a_prev), opt(x), opt(v0), opt(i0), opt(a0), beta, c, thr)
    r = get_engine(engine).backward(spec, saved, opt(g_s), opt(g_vrec), _or_zeros(g_vt, n),
                                    _or_zeros(g_it, n), _or_zeros(g_at, n), want_beta,
                                    want_thr)
    return (r.gx, r.gv0, r.gi0, r.ga0,
            r.gbeta if r.gbeta is not None else beta.new_empty(0),
            r.gthr if r.gthr is not None else thr.new_empty(0))


def _width(h: Tensor, x: Tensor, g_s: Tensor, g_vrec: Tensor, *finals: Tensor) -> int:
    """Neurons ``N`` of a backward call: from a ``[T, N]`` tensor, else from a final-state
    gradient (an ``[N]`` one is present when no ``[T, N]`` gradient is)."""
    for t in (h, x, g_s, g_vrec):
        if t.numel():
            return t.shape[1]
    return max(t.shape[0] for t in finals)


_LIB.impl("fused_backward", _not_traced(_backward_op), "CompositeExplicitAutograd")


@torch.library.register_fake("snn::fused_backward", lib=_LIB)
def _backward_fake(engine: str, ispec: list[int], fspec: list[float], want_beta: bool,
                   want_thr: bool, h: Tensor, a_prev: Tensor, x: Tensor, v0: Tensor,
                   i0: Tensor, a0: Tensor, beta: Tensor, c: Tensor, thr: Tensor, g_s: Tensor,
                   g_vrec: Tensor, g_vt: Tensor, g_it: Tensor, g_at: Tensor
                   ) -> tuple[Tensor, ...]:
    t_steps = next(t for t in (h, x, g_s, g_vrec) if t.numel()).shape[0]
    n = _width(h, x, g_s, g_vrec, g_vt, g_it, g_at)
    like = beta.new_empty(0, dtype=g_vt.dtype)
    return (like.new_empty(t_steps, n), like.new_empty(n), like.new_empty(n),
            like.new_empty(n),
            beta.new_empty(n) if want_beta else beta.new_empty(0),
            thr.new_empty(n) if want_thr else thr.new_empty(0))


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
    engine, ispec, fspec, _, x, v0, i0, a0, beta, c, thr = inputs
    spikes, h, a_prev = output[0], output[5], output[6]
    ctx.mark_non_differentiable(h, a_prev)
    kind = ispec[0]
    learn_beta = ctx.needs_input_grad[8]
    empty = _empty(x)
    if get_engine(engine).recompute:
        keep = (empty, empty, x, v0, i0, a0)
    else:
        if kind == KIND_LI:  # LI's pre-reset membrane is its output
            h = spikes if learn_beta else empty
        keep = (h, a_prev if kind == KIND_ALIF else empty,
                x if learn_beta and ispec[5] else empty, v0 if learn_beta else empty,
                empty, empty)
    ctx.save_for_backward(*keep, beta, c, thr)
    ctx.engine, ctx.ispec, ctx.fspec = engine, ispec, fspec
    ctx.set_materialize_grads(False)


def _backward(ctx: Any, g_s: Tensor | None, g_vrec: Tensor | None, g_vt: Tensor | None,
              g_it: Tensor | None, g_at: Tensor | None, _g_h: Any, _g_a: Any
              ) -> tuple[Any, ...]:
    h, a_prev, x, v0, i0, a0, beta, c, thr = ctx.saved_tensors
    kind = ctx.ispec[0]
    needs = ctx.needs_input_grad
    want_beta, want_thr = needs[8], needs[10]
    like = g_s if g_s is not None else g_vrec if g_vrec is not None else h if h.numel() else x

    def full(g: Tensor | None, cond: bool = True) -> Tensor:
        if g is None or not cond or g.numel() == 0:
            return _empty(like)  # zeros, made inside the operator
        return g.contiguous()

    gx, gv0, gi0, ga0, gbeta, gthr = torch.ops.snn.fused_backward(
        ctx.engine, ctx.ispec, ctx.fspec, bool(want_beta), bool(want_thr),
        h, a_prev, x, v0, i0, a0, beta, c, thr,
        g_s if g_s is not None else _empty(like),
        g_vrec if g_vrec is not None and g_vrec.numel() else _empty(like),
        full(g_vt), full(g_it, kind == KIND_CUBA), full(g_at, kind == KIND_ALIF),
    )
    if want_beta:
        gbeta = gbeta.to(beta.dtype)
        gbeta = gbeta.sum().reshape(1) if beta.numel() == 1 else gbeta
    if want_thr:
        gthr = gthr.to(thr.dtype)
        gthr = gthr.sum().reshape(1) if thr.numel() == 1 else gthr
    return (
        None, None, None, None,
        gx if needs[4] else None,
        gv0 if needs[5] else None,
        gi0 if needs[6] and kind == KIND_CUBA else None,
        ga0 if needs[7] and kind == KIND_ALIF else None,
        gbeta if want_beta else None,
        None,
        gthr if want_thr else None,
    )


torch.library.register_autograd("snn::fused_forward", _backward, setup_context=_setup_context,
                                lib=_LIB)


def _no_double_backward(ctx: Any, *grads: Any) -> tuple[Any, ...]:
    raise RuntimeError(
        "the fused neuron kernels have no second derivative (double backward, "
        "create_graph=True through a neuron); run the neuron with backend='torch' for it"
    )


torch.library.register_autograd("snn::fused_backward", _no_double_backward,
                                setup_context=lambda ctx, inputs, output: None, lib=_LIB)


# --------------------------------------------------------------------------------------------
# from a neuron's keyword parameters to a run


def _parse_params(desc: NeuronDescription, params: dict[str, Any]) -> dict[str, Any]:
    known = desc.params
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise TypeError(f"{desc.step.__name__}() got unexpected keyword arguments {unknown}")
    out = {**known, **params}
    missing = sorted(k for k, v in out.items() if v is REQUIRED)
    if missing:
        raise TypeError(f"{desc.step.__name__}() missing required keyword arguments {missing}")
    return out


def _kernel_surrogate(surrogate: Surrogate) -> tuple[int, tuple[float, float, float]]:
    cls = type(surrogate)
    sid = cls.kernel_id
    # a subclass inherits kernel_id but may change the derivative: only the registered class
    # of a kernel_id has that kernel's derivative
    if sid < 0 or SURROGATES.get(cls.name) is not cls:
        raise UnsupportedConfiguration(
            f"surrogate {cls.__name__} has no derivative written in the fused kernels "
            "(kernel_id < 0 or not the registered class); it runs on the reference backend"
        )
    return sid, surrogate.kernel_constants()


def _scalar(name: str, value: Any) -> float:
    if isinstance(value, Tensor):
        raise UnsupportedConfiguration(f"fused kernels take {name} as a float, got a tensor")
    return float(value)


def _per_neuron(
    name: str, value: float | Tensor, x: Tensor, step_shape: torch.Size
) -> Tensor:
    """``value`` as a vector in the compute dtype: ``[1]`` for one value, else ``[N]``."""
    dtype = param_dtype(x.dtype)
    if not isinstance(value, Tensor):
        return torch.full((1,), float(value), dtype=dtype, device=x.device)
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
        return value.reshape(1)
    return value.expand(step_shape).reshape(-1)


def make_spec(desc: NeuronDescription, p: dict[str, Any]) -> FusedSpec:
    """The :class:`FusedSpec` of a run of ``desc`` with the parsed parameters ``p``.

    Raises:
        UnsupportedConfiguration: for what the kernels do not cover.
        ValueError, TypeError: for invalid parameters, as the reference raises them.
    """
    if not desc.unit_decay:
        check_decay("beta", p["beta"])
    kind = desc.integration
    assert kind is not None
    fields: dict[str, Any] = {"kind": kind, "fire": desc.fire,
                              "decay_input": bool(p.get("decay_input", False))}
    if kind != KIND_LI:
        check_threshold(p["threshold"])
        check_reset(p["reset"])
        if p["reset"] not in desc.resets:
            raise ValueError(
                f"{desc.name}: reset must be one of {desc.resets}, got {p['reset']!r}"
            )
        if desc.uses_surrogate:
            fields["surrogate_id"], fields["sg"] = _kernel_surrogate(
                get_surrogate(p["surrogate"]))
        v_reset = _scalar("v_reset", p.get("v_reset", 0.0))
        if not math.isfinite(v_reset):
            raise ValueError(f"v_reset must be finite, got {v_reset}")
        fields.update(reset=RESET_CODES[p["reset"]], detach_reset=bool(p["detach_reset"]),
                      v_reset=v_reset)
    if desc.fire == FIRE_MULTILEVEL:
        fields["levels"] = float(p["levels"])
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
    return FusedSpec(**fields)


def fused_sequence(
    engine_name: str,
    desc: NeuronDescription,
    x: Tensor,
    state: Any,
    record: bool,
    params: dict[str, Any],
) -> SequenceOutput:
    """Run the neuron ``desc`` over ``x`` (``[T, B, ...]``) on the engine ``engine_name``;
    same contract as the reference ``*_sequence`` functions of :mod:`snn.functional`.

    Raises:
        UnsupportedConfiguration: for what the kernels do not cover (a dtype or device, a
            surrogate without a kernel derivative, a tensor decay for CuBa/ALIF, ...).
        ValueError, TypeError: for invalid parameters, as the reference raises them.
    """
    check_sequence(x)
    if torch._C._are_functorch_transforms_active():
        raise UnsupportedConfiguration(
            "the fused kernels do not run under torch.func transforms (grad, vmap, jacrev, "
            "...): their PyTorch custom operators have no functorch rules; backend='auto' "
            "runs the reference there, or pass backend='torch'"
        )
    engine = get_engine(engine_name)
    if x.device.type not in engine.devices:
        raise UnsupportedConfiguration(f"{engine.name} kernels run on {engine.devices} tensors")
    if x.dtype not in engine.dtypes:
        raise UnsupportedConfiguration(f"{engine.name} kernels do not take dtype {x.dtype}")
    p = _parse_params(desc, params)
    spec = make_spec(desc, p)

    T = x.shape[0]
    step_shape = x.shape[1:]
    N = math.prod(step_shape)
    xs = x.reshape(T, N).contiguous()

    beta_value = 1.0 if desc.unit_decay else p["beta"]
    beta = _per_neuron("beta", beta_value, x, step_shape)
    if isinstance(beta_value, Tensor):
        c = (1 - beta).detach() if spec.decay_input else torch.ones_like(beta).detach()
    else:
        c_value = 1.0 - float(beta_value) if spec.decay_input else 1.0
        c = torch.full((1,), c_value, dtype=beta.dtype, device=x.device)
    thr = _per_neuron("threshold", p.get("threshold", 1.0), x, step_shape)

    names = desc.state_fields
    given: dict[str, Tensor] = {}
    if state is not None:
        given = {
            f: check_state_tensor(f, getattr(state, f), x[0]).reshape(N).contiguous()
            for f in names
        }
    zeros = _empty(xs)  # the operator makes the zeros of an initial state not given
    spikes, v_rec, v_t, i_t, a_t, _, _ = torch.ops.snn.fused_forward(
        engine_name, spec.ints(), spec.floats(), bool(record), xs,
        given.get("v", zeros), given.get("i", zeros), given.get("a", zeros), beta, c, thr,
    )
    finals = {"v": v_t, "i": i_t, "a": a_t}
    new_state = desc.state(*(finals[f].reshape(step_shape) for f in names))
    return SequenceOutput(spikes.reshape(x.shape),
                          new_state, v_rec.reshape(x.shape) if record else None)
