"""Record spikes and membrane potentials of chosen layers, and regularise firing rates,
through context managers that remove their hooks on exit and never touch module attributes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from snn.neurons.base import BaseNeuron

__all__ = ["FiringRateRegularizer", "Monitor"]


def _as_sequence(module: nn.Module, out: Tensor) -> Tensor:
    """Outputs in time-first layout: a single-step neuron's ``[B, ...]`` becomes ``[1, B, ...]``."""
    if isinstance(module, BaseNeuron) and module.step_mode == "single":
        return out.unsqueeze(0)
    return out


def _resolve(model: nn.Module, named: dict[str, nn.Module], name: str) -> nn.Module | None:
    """The module called ``name`` in ``model``, or, failing that, in exactly one of its direct
    children (the names a converted network's ``neurons()`` gives are relative to its
    ``graph``)."""
    if name in named:
        return named[name]
    found = []
    for child in model.children():
        try:
            found.append(child.get_submodule(name))
        except AttributeError:
            continue
    if len(found) > 1:
        raise ValueError(f"layer name {name!r} is ambiguous: it exists in {len(found)} children "
                         f"of the model; give the full name")
    return found[0] if found else None


class _Hooks:
    """Select modules of ``model`` by qualified name (default: every spiking neuron) and keep the
    hook handles until ``__exit__``."""

    def __init__(self, model: nn.Module, layers: Sequence[str] | None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        named = dict(model.named_modules())
        if layers is None:
            self.layers = [n for n, m in named.items() if isinstance(m, BaseNeuron) and m.spiking]
        else:
            if isinstance(layers, str):
                raise TypeError("layers must be a sequence of module names, not a single string")
            resolved = {n: _resolve(model, named, n) for n in layers}
            missing = [n for n, m in resolved.items() if m is None]
            if missing:
                raise ValueError(
                    f"no module named {missing} in the model; available: "
                    f"{[n for n in named if n][:20]}"
                )
            self.layers = list(layers)
            named = {n: resolved[n] for n in self.layers}
        self.modules = {n: named[n] for n in self.layers}
        self._handles: list[RemovableHandle] = []

    def _attach(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Any:
        if self._handles:
            raise RuntimeError(f"{type(self).__name__} is already attached")
        self._attach()
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


class Monitor(_Hooks):
    """Record the output spikes (and membrane potentials) of chosen layers.

    Recordings are kept in this object, keyed by module name, and are detached copies (on the
    CPU by default). Calls accumulate along time: two sequence calls of ``T`` steps, or ``T``
    single-step calls, give a ``[2T, B, ...]`` or ``[T, B, ...]`` record.

    Args:
        model: the model to observe.
        layers: qualified module names (``model.named_modules()``); default every spiking
            neuron. Non-neuron modules have their outputs recorded (they must be
            time-first sequences).
        v: also record membrane potentials (neurons only).
        to_cpu: move recordings to the CPU.

    Example:
        >>> with Monitor(model, v=True) as mon:
        ...     model(x)
        >>> mon.spikes("2").shape, mon.firing_rates()
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str] | None = None,
        *,
        v: bool = False,
        to_cpu: bool = True,
    ):
        super().__init__(model, layers)
        self.record_v = bool(v)
        if self.record_v:
            not_neurons = [n for n, m in self.modules.items() if not isinstance(m, BaseNeuron)]
            if not_neurons:
                raise ValueError(
                    f"membrane potentials can only be recorded from neurons: {not_neurons}"
                )
        self.to_cpu = bool(to_cpu)
        self._spikes: dict[str, list[Tensor]] = {n: [] for n in self.layers}
        self._v: dict[str, list[Tensor]] = {n: [] for n in self.layers}

    def _keep(self, t: Tensor) -> Tensor:
        t = t.detach()
        return t.cpu() if self.to_cpu else t.clone()

    def _attach(self) -> None:
        for name, module in self.modules.items():

            def on_output(mod: nn.Module, _inp: Any, out: Tensor, name: str = name) -> None:
                self._spikes[name].append(self._keep(_as_sequence(mod, out)))

            self._handles.append(module.register_forward_hook(on_output))
            if self.record_v:

                def on_trace(_mod: nn.Module, v: Tensor, name: str = name) -> None:
                    self._v[name].append(self._keep(v))

                self._handles.append(module.register_trace_hook(on_trace))

    @staticmethod
    def _cat(name: str, chunks: list[Tensor], what: str) -> Tensor:
        if not chunks:
            raise KeyError(f"nothing recorded for {what} of layer {name!r}")
        return torch.cat(chunks, 0)

    def spikes(self, name: str) -> Tensor:
        """Recorded outputs of layer ``name``, ``[T, B, ...]``."""
        self._check_name(name)
        return self._cat(name, self._spikes[name], "outputs")

    def v(self, name: str) -> Tensor:
        """Recorded membrane potentials of layer ``name``, ``[T, B, ...]``."""
        self._check_name(name)
        if not self.record_v:
            raise RuntimeError("this Monitor was created with v=False")
        return self._cat(name, self._v[name], "membrane potentials")

    def firing_rates(self) -> dict[str, float]:
        """Mean output per neuron and step for every recorded layer (spikes per step)."""
        return {n: float(self.spikes(n).float().mean()) for n in self.layers if self._spikes[n]}

    def clear(self) -> None:
        """Drop the recordings (hooks stay attached)."""
        for store in (self._spikes, self._v):
            for chunks in store.values():
                chunks.clear()

    def _check_name(self, name: str) -> None:
        if name not in self.modules:
            raise KeyError(f"layer {name!r} is not monitored; monitored: {self.layers}")


class FiringRateRegularizer(_Hooks):
    r"""Differentiable penalty keeping firing rates between ``lower`` and ``upper``.

    For each observed layer with mean firing rate :math:`r` (spikes per neuron and step, over the
    calls since the last :meth:`penalty`),

    .. math:: L = w \sum_\text{layers} \left(\max(0, r - r_\text{upper})^2 +
              \max(0, r_\text{lower} - r)^2\right)

    With ``per_neuron=True`` the bounds apply to each neuron's rate (averaged over time and
    batch) and the squared violations are averaged over neurons.

    Args:
        model: the model whose neurons are observed.
        layers: qualified names of the neurons (default: every spiking neuron).
        lower: lower bound on the rate (0 disables it).
        upper: upper bound on the rate (1 disables it).
        weight: factor :math:`w`.
        per_neuron: bound each neuron rather than the layer mean.

    Example:
        >>> with FiringRateRegularizer(model, upper=0.2, weight=1.0) as reg:
        ...     loss = criterion(model(x), y) + reg.penalty()
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str] | None = None,
        *,
        lower: float = 0.0,
        upper: float = 1.0,
        weight: float = 1.0,
        per_neuron: bool = False,
    ):
        super().__init__(model, layers)
        if not 0 <= lower <= upper <= 1:
            raise ValueError(f"need 0 <= lower <= upper <= 1, got lower={lower}, upper={upper}")
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        self.lower, self.upper, self.weight = float(lower), float(upper), float(weight)
        self.per_neuron = bool(per_neuron)
        self._outputs: dict[str, list[Tensor]] = {n: [] for n in self.layers}

    def _attach(self) -> None:
        for name, module in self.modules.items():

            def on_output(mod: nn.Module, _inp: Any, out: Tensor, name: str = name) -> None:
                self._outputs[name].append(_as_sequence(mod, out))

            self._handles.append(module.register_forward_hook(on_output))

    def penalty(self) -> Tensor:
        """The penalty over the outputs seen since the last call (then forgets them)."""
        terms = []
        for name in self.layers:
            chunks = self._outputs[name]
            if not chunks:
                continue
            s = torch.cat(chunks, 0)
            rate = s.flatten(0, 1).mean(0) if self.per_neuron else s.mean()
            excess = torch.relu(rate - self.upper) ** 2 + torch.relu(self.lower - rate) ** 2
            terms.append(excess.mean())
            chunks.clear()
        if not terms:
            raise RuntimeError("no outputs recorded since the last penalty(); run the model first")
        return self.weight * torch.stack(terms).sum()
