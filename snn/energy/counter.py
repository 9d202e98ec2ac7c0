"""Count operations, neuron updates, spikes and memory accesses during real forward passes.

:class:`OpCounter` attaches forward hooks to every module of a model inside a ``with`` block and
removes them on exit; the counts live in the counter, keyed by module name, and nothing is
written to the model. It works for networks built with this library (neurons of
:mod:`snn.neurons`, stateless layers in :class:`snn.layers.TimeDistributed`, either step mode),
converted networks, and plain ANNs.

Per module type the rules of :mod:`snn.energy.rules` apply (see there for the memory model and
for which inputs are *events*, priced as accumulates: binary spikes, the output of modules that
declare ``fixed_amplitude_events`` such as a converted network's neurons, and what max and
average pooling make of them). A module without a rule, and arithmetic done by torch functions
directly in a container's ``forward`` (such as a residual addition), is reported as
*uncounted*: the report says what it does not know instead of counting it as zero. A module
may list functions of its own ``forward`` that are folded elsewhere in a ``folded_functions``
mapping (function name to reason; e.g. a converted network's scaling by the threshold, which
folds into the next weights); those are not reported.

While attached, the counter keeps the event tensors of the running forward call alive (so
that their memory is not reused by another tensor before their consumers run); they are
released when the call returns.

Agreement with other counters (tested in ``tests/energy/test_crosscheck.py``):

- NeuroBench (``SynapticOperations``, ``ActivationSparsity``, ``Footprint``): equal effective
  ACs, effective MACs, dense synaptic operations, activation sparsity and footprint, with the
  default ``nonzero_weights_only=True`` (NeuroBench binarises the weights too).
- sinabs (``conv_layer_synops_hook``, ``linear_layer_synops_hook``): equal synaptic operations
  for binary inputs with ``nonzero_weights_only=False`` (sinabs counts every connection).
  sinabs multiplies the fan-out by the input *value* (it reads inputs as spike counts) and
  rescales a layer after ``AvgPool2d`` by the kernel area (sum pooling); here average-pooled
  spikes are counted the same way (events per window times the fan-out, as ACs), while any
  other non-binary input is a graded value whose nonzero elements each cost one MAC per
  connection, so counts differ for multi-spike inputs.
- Layer-wise MAC counters (ptflops, syops-counter, torchvision's GFLOPS): ``dense_macs`` equals
  their convolution and linear MACs (padding taps included, bias excluded); they add batch
  norm, ReLU and pooling element operations, which are here ``other_macs`` and
  ``dense_other_adds``.

Example:
    >>> with OpCounter(model) as counter:
    ...     model(x)                       # x: [T, B, ...]
    >>> counts = counter.counts()
    >>> report = counter.report("loihi")
    >>> print(report)
"""

from __future__ import annotations

from collections import Counter as _Tally
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

from snn.energy.counts import LayerCounts, ModelCounts
from snn.energy.rules import RuleContext, find_rule, propagate_events

__all__ = ["CountingError", "OpCounter", "count_ops"]

# torch functions that move or view data without arithmetic
_FREE_FUNCTIONS = frozenset({
    "__get__", "__getitem__", "__setitem__", "__len__", "__iter__", "__contains__", "__bool__",
    "__format__", "__repr__", "__hash__", "__eq__", "__ne__",
    "size", "dim", "numel", "shape", "dtype", "device", "is_floating_point", "ndimension",
    "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "permute", "transpose",
    "t", "contiguous", "unsqueeze", "squeeze", "expand", "expand_as", "movedim", "moveaxis",
    "narrow", "select", "unbind", "split", "chunk", "cat", "concat", "concatenate", "stack",
    "clone", "detach", "to", "cpu", "cuda", "float", "double", "half", "bfloat16", "type",
    "type_as", "requires_grad_", "zeros_like", "ones_like", "empty_like", "new_zeros",
    "new_ones", "new_empty", "new_full", "full_like", "tensor", "as_tensor", "item", "tolist",
    "data_ptr", "stride", "storage_offset", "is_contiguous", "element_size", "flip", "roll",
})


class CountingError(ValueError):
    """The model's forward pass failed while counting; the message names the module."""


class _FunctionWatch(TorchFunctionMode):
    """Sees every torch function; reports arithmetic run outside the hooked modules."""

    def __init__(self, counter: OpCounter):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        c = self.counter
        if c._running and not c._inside and not c._busy:
            name = getattr(func, "__name__", repr(func))
            if name not in _FREE_FUNCTIONS:
                owner = c._stack[-1] if c._stack else ""
                folded = getattr(c._by_name.get(owner), "folded_functions", None) or {}
                if name not in folded:
                    c._functional[f"{owner or '<model>'}: {name}"] += 1
        return func(*args, **(kwargs or {}))


class OpCounter:
    """Context manager counting the work of every module of ``model`` in forward passes.

    Args:
        model: the network (an ``nn.Module``).
        nonzero_weights_only: count a synaptic operation only where the weight is nonzero
            (NeuroBench's convention; pruned synapses cost nothing). ``False`` counts every
            structural connection.
        watch_functions: also list arithmetic done by torch functions outside modules (e.g.
            residual additions) as uncounted, through a ``TorchFunctionMode``.

    Counts assume inference: batch norm is one multiply-add per element and dropout the
    identity, whatever the module's training flag.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        nonzero_weights_only: bool = True,
        watch_functions: bool = True,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.watch_functions = bool(watch_functions)
        self._ctx = RuleContext(nonzero_only=nonzero_weights_only)
        self._by_name = dict(model.named_modules())
        self._layers: dict[str, LayerCounts] = {}
        self._rules: dict[str, Any] = {}
        for name, module in model.named_modules():
            has_children = next(module.children(), None) is not None
            own_params = any(True for _ in module.parameters(recurse=False))
            kind, rule, reason = find_rule(module)
            if has_children and kind == "uncounted" and not own_params:
                continue  # a container: its children are counted
            param_bytes = sum(
                t.numel() * t.element_size()
                for t in (*module.parameters(recurse=False), *module.buffers(recurse=False))
            )
            self._layers[name] = LayerCounts(
                name=name, type=type(module).__name__, kind=kind, reason=reason,
                param_bytes=param_bytes,
            )
            self._rules[name] = rule
        self._handles: list[RemovableHandle] = []
        self._mode: _FunctionWatch | None = None
        self._stack: list[str] = []
        self._inside = 0
        self._busy = False
        self._running = False
        self._calls: list[dict[str, Any]] = []
        self._functional: _Tally[str] = _Tally()

    # -- hooks ---------------------------------------------------------------------------
    def __enter__(self) -> OpCounter:
        if self._handles:
            raise RuntimeError("this OpCounter is already attached")
        self._stack.clear()
        self._inside = 0
        self._handles.append(self.model.register_forward_pre_hook(self._root_pre))
        for name, module in self.model.named_modules():
            counted = name in self._layers
            self._handles.append(module.register_forward_pre_hook(self._make_pre(name, counted)))
            self._handles.append(
                module.register_forward_hook(self._make_post(name, counted), with_kwargs=True)
            )
        self._handles.append(self.model.register_forward_hook(self._root_post))
        if self.watch_functions:
            self._mode = _FunctionWatch(self)
            self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None
        self._running = False

    def _root_pre(self, module: nn.Module, args: tuple) -> None:
        self._stack.clear()
        self._inside = 0
        self._running = True
        self._ctx.end_call()
        first = next((a for a in args if isinstance(a, Tensor)), None)
        self._calls.append({
            "shape": tuple(first.shape) if first is not None else None,
            "neurons_before": len(self._ctx.neuron_calls),
        })

    def _root_post(self, module: nn.Module, args: tuple, out: Any) -> None:
        self._running = False
        self._ctx.end_call()

    def _make_pre(self, name: str, counted: bool):
        def pre(module: nn.Module, args: tuple) -> None:
            self._stack.append(name)
            if counted:
                self._inside += 1

        return pre

    def _make_post(self, name: str, counted: bool):
        def post(module: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
            if self._stack and self._stack[-1] == name:
                self._stack.pop()
            inputs = args + tuple(kwargs.values())
            self._busy = True
            try:
                with torch.no_grad():
                    if counted:
                        self._inside -= 1
                        layer = self._layers[name]
                        layer.calls += 1
                        if not any(isinstance(t, Tensor) for t in inputs):
                            layer.kind = "uncounted"
                            layer.reason = "called without a tensor input"
                            return
                        self._rules[name](layer, module, inputs, out, self._ctx)
                    kind = self._layers[name].kind if counted else "container"
                    propagate_events(module, kind, inputs, out, self._ctx)
            finally:
                self._busy = False

        return post

    # -- results ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Zero all counts (hooks stay attached)."""
        for name, layer in self._layers.items():
            kind, _, reason = find_rule(dict(self.model.named_modules())[name])
            self._layers[name] = LayerCounts(
                name=name, type=layer.type, kind=kind, reason=reason, param_bytes=layer.param_bytes
            )
        self._ctx.clear()
        self._calls.clear()
        self._functional.clear()

    def counts(self, *, steps: float | None = None, samples: int | None = None) -> ModelCounts:
        """Snapshot of the counts so far.

        Time steps and samples are inferred from the first neuron that runs in each model call:
        the steps are those it ran in that call (the sum of ``T`` over its calls ``[T, B, ...]``,
        so a model that simulates in chunks of time counts every chunk; one per call in
        single-step mode) and the samples its first call's ``B`` (``samples`` = sum over model
        calls). When every model call runs one single step, each call is one step of the same
        ``B`` samples (a loop over time outside the model). Without neurons every call processes
        ``input.shape[0]`` samples in one step. Pass ``steps`` and
        ``samples`` when your loop differs (e.g. several sequences in single-step mode).

        Raises:
            RuntimeError: if the model was never called while counting.
            ValueError: for non-positive ``steps`` or ``samples``.
        """
        if not self._calls:
            raise RuntimeError("no forward pass was counted: call the model inside the with block")
        inferred_steps, inferred_samples = self._infer_steps_samples()
        if steps is not None and steps <= 0:
            raise ValueError(f"steps must be positive, got {steps}")
        if samples is not None and samples <= 0:
            raise ValueError(f"samples must be positive, got {samples}")
        footprint = sum(
            t.numel() * t.element_size()
            for t in (*self.model.parameters(), *self.model.buffers())
        )
        layers = tuple(LayerCounts(**vars(x)) for x in self._layers.values())
        return ModelCounts(
            layers=layers,
            steps=float(steps if steps is not None else inferred_steps),
            samples=int(samples if samples is not None else inferred_samples),
            calls=len(self._calls),
            functional=dict(self._functional),
            footprint_bytes=footprint,
            spiking=any(x.kind == "neuron" and x.reason != "non-spiking" for x in layers),
        )

    def _infer_steps_samples(self) -> tuple[float, int]:
        # per model call: the steps its first neuron ran (summed over all calls of that neuron
        # in the model call, so a model that simulates in chunks counts every chunk) and the
        # batch of that neuron's first call
        neuron_calls = self._ctx.neuron_calls
        per_call = []
        for i, call in enumerate(self._calls):
            end = self._calls[i + 1]["neurons_before"] if i + 1 < len(self._calls) else None
            mine = neuron_calls[call["neurons_before"]:end]
            if mine:
                first = mine[0][3]
                steps = sum(t for _, t, _, key in mine if key == first)
                per_call.append((mine[0][0], steps, mine[0][2]))
        if not per_call:
            samples = sum(c["shape"][0] if c["shape"] else 1 for c in self._calls)
            return 1.0, max(int(samples), 1)
        if all(single and steps == 1 for single, steps, _ in per_call):
            # one single-step call per time step, looped outside the model
            return float(len(per_call)), per_call[0][2]
        total_steps = sum(steps * b for _, steps, b in per_call)
        samples = sum(b for _, _, b in per_call)
        return total_steps / samples, samples

    def report(self, target: Any = "cmos45_fp32", **kwargs: Any):
        """:class:`snn.energy.EnergyReport` of the counts so far on ``target`` (see there)."""
        from snn.energy.report import EnergyReport

        count_kwargs = {k: kwargs.pop(k) for k in ("steps", "samples") if k in kwargs}
        return EnergyReport(self.counts(**count_kwargs), target, **kwargs)


def count_ops(
    model: nn.Module,
    *inputs: Any,
    nonzero_weights_only: bool = True,
    steps: float | None = None,
    samples: int | None = None,
    **kwargs: Any,
) -> ModelCounts:
    """Run ``model(*inputs, **kwargs)`` once without gradients and return its counts.

    The neuron states are used as they are (call :func:`snn.reset` first for a fresh run).

    Raises:
        CountingError: if the forward pass fails (e.g. an input shape the model does not
            accept); the message names the innermost module that was running and the shapes.
    """
    counter = OpCounter(model, nonzero_weights_only=nonzero_weights_only)
    with counter, torch.no_grad():
        try:
            model(*inputs, **kwargs)
        except Exception as err:
            where = counter._stack[-1] if counter._stack else "<model>"
            module = dict(model.named_modules()).get(where, model)
            shapes = [tuple(x.shape) for x in inputs if isinstance(x, Tensor)]
            raise CountingError(
                f"forward pass failed in module {where or '<model>'!r} "
                f"({type(module).__name__}) with model input shapes {shapes}: {err}"
            ) from err
    return counter.counts(steps=steps, samples=samples)
