"""Build this library's neurons from SpikingJelly, snnTorch and Norse neuron modules.

Each function reads a peer module's parameters and returns the neuron here with the same
forward dynamics: the same spikes for the same input sequence, up to the threshold
comparison (SpikingJelly fires at :math:`h \\ge \\vartheta` like this library, snnTorch and
Norse at :math:`h > \\vartheta`; the two differ only when the membrane equals the threshold
exactly). Where a peer's model has no exact counterpart here, the function raises a
:class:`ValueError` that says why instead of returning an approximation. The surrogate
gradient is carried over where the same function exists here (SpikingJelly's ``Sigmoid`` and
``ATan``, snnTorch's default ``atan``, Norse's ``"super"``), so the gradients are the same too;
any other surrogate is replaced by this library's default unless ``surrogate=...`` is passed.
The mappings are derived in ``docs/coming_from_peers.md`` and
checked against the installed peers by ``tests/test_peers.py``.

The peers are imported only to recognise their classes; none is a dependency.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from snn.neurons import IF, LIF, CubaLIF, ParametricLIF, SpikingNeuron
from snn.surrogate import ATan, FastSigmoid, Sigmoid, Surrogate

__all__ = ["from_norse", "from_snntorch", "from_spikingjelly"]


def _peer(module_name: str, what: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as e:  # pragma: no cover - the peers are installed for the tests
        raise ImportError(f"{what} needs {module_name.split('.')[0]} installed ({e})") from e


def _scalar(value: Any, name: str, who: str) -> float:
    """A peer's parameter as a Python float; per-neuron tensors have no counterpart here."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{who}: {name} holds {value.numel()} values (one per neuron); the neurons here "
                "take one value per layer"
            )
        return float(value.detach().reshape(()).item())
    return float(value)


def _threshold_and_reset(v_th: float, v_reset: float | None, who: str) -> dict[str, Any]:
    """A hard reset to ``v_reset`` after leaking toward it, seen from ``u = v - v_reset``.

    The peer's membrane ``v`` leaks toward ``v_reset`` (SpikingJelly) or ``v_leak`` (Norse);
    here it leaks toward 0. With ``u = v - v_rest`` the dynamics are identical, the threshold
    becomes ``v_th - v_rest`` and the spikes are the same.
    """
    if v_reset is None:
        return {"threshold": v_th, "reset": "subtract"}
    if not v_th > v_reset:
        raise ValueError(f"{who}: v_threshold {v_th} must exceed v_reset {v_reset}")
    return {"threshold": v_th - v_reset, "reset": "hard", "v_reset": 0.0}


def _spikingjelly_surrogate(function: Any) -> Surrogate | None:
    """SpikingJelly's ``Sigmoid(alpha)`` and ``ATan(alpha)`` are the same functions here."""
    same = {"Sigmoid": Sigmoid, "ATan": ATan}
    cls = same.get(type(function).__name__)
    module = type(function).__module__
    if cls is None or not module.startswith("spikingjelly"):
        return None
    return cls(alpha=float(function.alpha))


def from_spikingjelly(module: nn.Module, **kwargs: Any) -> SpikingNeuron:
    """The neuron here equal to a SpikingJelly ``IFNode``, ``LIFNode`` or ``ParametricLIFNode``.

    SpikingJelly's ``tau`` is the inverse of the fraction leaked per step, so
    :math:`\\beta = 1 - 1/\\tau` (here ``tau`` means :math:`\\beta = e^{-dt/\\tau}`, so the
    decay is passed as ``beta``). SpikingJelly leaks toward ``v_reset`` (toward 0 with a soft
    reset, ``v_reset=None``); here the membrane leaks toward 0, so a hard reset to
    ``v_reset`` becomes a hard reset to 0 with threshold ``v_threshold - v_reset``: the spikes
    are identical and this membrane equals SpikingJelly's minus ``v_reset``. ``step_mode``
    ``"s"``/``"m"`` becomes ``"single"``/``"sequence"``. The surrogates ``Sigmoid(alpha)``
    (SpikingJelly's default) and ``ATan(alpha)`` become the same surrogates here. A
    ``ParametricLIFNode``'s learnable
    ``w`` (:math:`1/\\tau = \\sigma(w)`) becomes ``w`` here negated (:math:`\\beta = \\sigma(w)`),
    so the decay and its gradient carry over.

    Args:
        module: the SpikingJelly neuron (``spikingjelly.activation_based.neuron``).
        **kwargs: passed on to the neuron here (e.g. ``surrogate``, ``backend``).

    Returns:
        :class:`~snn.neurons.IF`, :class:`~snn.neurons.LIF` or
        :class:`~snn.neurons.ParametricLIF`.

    Raises:
        TypeError: ``module`` is not one of those three classes.
        ValueError: ``v_threshold <= v_reset``.
    """
    neuron = _peer("spikingjelly.activation_based.neuron", "from_spikingjelly")
    who = f"from_spikingjelly({type(module).__name__})"
    v_th = _scalar(module.v_threshold, "v_threshold", who)
    v_reset = getattr(module, "v_reset", None)
    v_reset = None if v_reset is None else _scalar(v_reset, "v_reset", who)
    common: dict[str, Any] = {
        **_threshold_and_reset(v_th, v_reset, who),
        "detach_reset": bool(getattr(module, "detach_reset", False)),
        "step_mode": "single" if getattr(module, "step_mode", "s") == "s" else "sequence",
    }
    surrogate = _spikingjelly_surrogate(getattr(module, "surrogate_function", None))
    if surrogate is not None:
        common["surrogate"] = surrogate
    common.update(kwargs)
    if isinstance(module, neuron.ParametricLIFNode):
        out = ParametricLIF(beta=0.5, decay_input=bool(module.decay_input), **common)
        out = out.to(dtype=module.w.dtype)
        with torch.no_grad():
            out.w.copy_(-module.w.detach().reshape(out.w.shape))
        return out
    if isinstance(module, neuron.LIFNode):
        tau = _scalar(module.tau, "tau", who)
        return LIF(beta=1.0 - 1.0 / tau, decay_input=bool(module.decay_input), **common)
    if isinstance(module, neuron.IFNode):
        return IF(**common)
    raise TypeError(
        f"from_spikingjelly: expected IFNode, LIFNode or ParametricLIFNode, "
        f"got {type(module).__name__}"
    )


def from_snntorch(module: nn.Module, **kwargs: Any) -> SpikingNeuron:
    """The neuron here equal to an snnTorch ``Leaky`` or ``Synaptic`` neuron.

    ``Leaky(beta)`` is :class:`~snn.neurons.LIF` with the same ``beta``; ``Synaptic(alpha,
    beta)`` is :class:`~snn.neurons.CubaLIF` with the same ``alpha`` and ``beta`` (neither
    scales its input). The resets map as follows:

    - ``reset_mechanism="zero"`` is ``reset="hard"`` with ``v_reset=0``: for ``Leaky`` with
      either ``reset_delay`` (snnTorch reports the membrane before the delayed reset; the
      spikes are the same), for ``Synaptic`` with ``reset_delay=False`` only (with the delay,
      ``Synaptic`` zeroes its current and membrane on the step after a spike, that step's
      input included: refused here);
    - ``reset_mechanism="subtract"`` with ``reset_delay=False`` is ``reset="subtract"``, as
      long as no reset leaves the membrane above threshold (:math:`h < 2\\vartheta` at every
      spike): when it does, snnTorch subtracts the threshold once more before the next firing
      decision and the spike trains part;
    - ``reset_mechanism="subtract"`` with snnTorch's default ``reset_delay=True`` subtracts the
      threshold one step late, after the decay, from :math:`\\beta v + x`: a different model,
      refused here (build the snnTorch neuron with ``reset_delay=False``);
    - ``reset_mechanism="none"`` is ``reset="none"``.

    snnTorch's default surrogate, ``atan`` with ``alpha=2``, is this library's default too; a
    different ``spike_grad`` is not read (pass ``surrogate=...``).
    snnTorch neurons take one step per call; the neuron returned does too
    (``step_mode="single"``); pass ``step_mode="sequence"`` to run ``[T, B, ...]`` at once.
    A learnable ``beta`` becomes a fixed one (its current value).

    Args:
        module: ``snntorch.Leaky`` or ``snntorch.Synaptic``.
        **kwargs: passed on to the neuron here (e.g. ``surrogate``, ``step_mode``).

    Raises:
        TypeError: another class.
        ValueError: a configuration with no exact counterpart (delayed subtraction, graded
            spikes, inhibition, quantised state, per-neuron decays).
    """
    snntorch = _peer("snntorch", "from_snntorch")
    who = f"from_snntorch({type(module).__name__})"
    if not isinstance(module, snntorch.Leaky | snntorch.Synaptic):
        raise TypeError(f"from_snntorch: expected snntorch.Leaky or Synaptic, got {who[14:-1]}")
    if getattr(module, "inhibition", False) or getattr(module, "state_quant", False):
        raise ValueError(f"{who}: inhibition and state_quant have no counterpart here")
    if _scalar(module.graded_spikes_factor, "graded_spikes_factor", who) != 1.0:
        raise ValueError(f"{who}: graded spikes (graded_spikes_factor != 1) are not supported")
    mechanism = module.reset_mechanism
    if mechanism == "subtract" and module.reset_delay:
        raise ValueError(
            f"{who}: reset_mechanism='subtract' with reset_delay=True (snnTorch's default) "
            "subtracts the threshold one step late, from beta*v + x; no neuron here does that. "
            "Use reset_delay=False, which equals reset='subtract' here"
        )
    if mechanism == "zero" and module.reset_delay and isinstance(module, snntorch.Synaptic):
        raise ValueError(
            f"{who}: reset_mechanism='zero' with reset_delay=True zeroes the current and the "
            "membrane of the step after a spike, that step's input included; no neuron here "
            "does that. Use reset_delay=False, which equals reset='hard' here"
        )
    reset = {"subtract": "subtract", "zero": "hard", "none": "none"}[mechanism]
    params: dict[str, Any] = {
        "threshold": _scalar(module.threshold, "threshold", who),
        "reset": reset,
        "v_reset": 0.0,
        "beta": _scalar(module.beta, "beta", who),
        "step_mode": "single",
    }
    if isinstance(module, snntorch.Synaptic):
        params["alpha"] = _scalar(module.alpha, "alpha", who)
    params.update(kwargs)
    return CubaLIF(**params) if "alpha" in params else LIF(**params)


def from_norse(module: nn.Module, **kwargs: Any) -> SpikingNeuron:
    """The neuron here equal to a Norse ``LIFCell``/``LIF`` or ``LIFBoxCell``.

    Norse integrates the continuous equations with forward Euler steps of ``dt``, so its
    decays per step are :math:`\\alpha = 1 - dt/\\tau_\\text{syn}` and
    :math:`\\beta = 1 - dt/\\tau_\\text{mem}` (``dt * tau_syn_inv``, ``dt * tau_mem_inv``),
    and the current enters the membrane scaled by :math:`1 - \\beta`. ``LIFCell``/``LIF`` is
    therefore :class:`~snn.neurons.CubaLIF` with those decays and ``decay_input=True``;
    ``LIFBoxCell`` (no synaptic current) is :class:`~snn.neurons.LIF` with ``decay_input=True``.
    Norse leaks toward ``v_leak``; here toward 0, so the threshold becomes ``v_th - v_leak``
    and the reset value ``v_reset - v_leak`` (this membrane is Norse's minus ``v_leak``).
    ``LIFCell``/``LIFBoxCell`` step one ``[B, ...]`` at a time (``step_mode="single"``),
    ``LIF`` takes ``[T, B, ...]`` (``"sequence"``). Norse's default surrogate ``"super"`` has
    the backward :math:`1/(|x|+1)^2` whatever its ``alpha`` (Norse 1.1), which is
    :class:`~snn.surrogate.FastSigmoid` with ``alpha=1`` here, and is mapped to it.

    Args:
        module: ``norse.torch.LIFCell``, ``norse.torch.LIF`` or ``norse.torch.LIFBoxCell``.
        **kwargs: passed on to the neuron here (e.g. ``surrogate``).

    Raises:
        TypeError: another class.
        ValueError: ``dt`` larger than a time constant (a negative Euler decay), or a
            subtractive box reset with ``v_leak != 0``.
    """
    nt = _peer("norse.torch", "from_norse")
    functional_reset = _peer("norse.torch.functional.reset", "from_norse")
    who = f"from_norse({type(module).__name__})"
    if not isinstance(module, nt.LIFCell | nt.LIF | nt.LIFBoxCell):
        raise TypeError(f"from_norse: expected LIFCell, LIF or LIFBoxCell, got {who[11:-1]}")
    p, dt = module.p, float(module.dt)

    def decay(name: str) -> float:
        value = 1.0 - dt * _scalar(getattr(p, name), name, who)
        if not 0.0 <= value <= 1.0:
            raise ValueError(
                f"{who}: dt * {name} = {1.0 - value} is outside [0, 1]; the Euler step is "
                "unstable and has no decay factor here"
            )
        return value

    v_leak = _scalar(p.v_leak, "v_leak", who)
    v_th = _scalar(p.v_th, "v_th", who) - v_leak
    params: dict[str, Any] = {
        "threshold": v_th,
        "reset": "hard",
        "v_reset": _scalar(p.v_reset, "v_reset", who) - v_leak,
        "decay_input": True,
        "step_mode": "sequence" if isinstance(module, nt.LIF) else "single",
        "beta": decay("tau_mem_inv"),
    }
    if p.method == "super":  # Norse's SuperSpike backward is 1 / (|x| + 1)^2, alpha unused
        params["surrogate"] = FastSigmoid(alpha=1.0)
    if isinstance(module, nt.LIFBoxCell):
        if p.reset_method is functional_reset.reset_subtract:
            if v_leak != 0:
                raise ValueError(f"{who}: a subtractive reset with v_leak != 0 is not supported")
            params.update(reset="subtract", v_reset=0.0)
        elif p.reset_method is not functional_reset.reset_value:
            raise ValueError(f"{who}: unknown reset_method {p.reset_method!r}")
        params.update(kwargs)
        return LIF(**params)
    params["alpha"] = decay("tau_syn_inv")
    params.update(kwargs)
    return CubaLIF(**params)
