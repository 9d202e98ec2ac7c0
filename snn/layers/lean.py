r"""Memory-lean training of the spiking transformers' spike-driven layers, with gradients
equal bit for bit to the plain computation.

Most of a spiking transformer's training memory is the activations autograd keeps for the
backward pass. Per element of a ``[T, B, N, D]`` token sequence, a plain
``SN(BN(x W))`` projection keeps its input ``x`` (float32, 4 bytes, although it holds spikes),
the batch norm's input ``z`` (4 bytes), the neuron's input ``BN(z)`` (4 bytes) and the
neuron's initial membrane; the spike products :math:`Q K^\top V` keep float copies of their
binary operands. What is run here instead keeps:

- :func:`project` (``Linear`` or time-folded ``Conv2d``, batch norm, fused neuron, in one
  autograd node): the input stored exactly in less space (binary spikes in 1 bit, other
  integers in ``[0, 255]`` such as sums of spike maps in 1 byte, anything else as it is) and
  ``z``; the neuron's input is recomputed from ``z`` in the backward pass (one elementwise
  pass, exactly the same values), its initial membrane is not kept when it starts from rest;
  a widening ``Linear`` (the MLP's first, 4x) keeps only its packed input and recomputes
  ``z`` with the same product (its cost: one more forward product of that layer);
- :func:`spike_qkv`: :math:`Q, K, V` in 1 bit each; :math:`K^\top V` is recomputed in the
  backward pass (:math:`2 N d^2` per head, the cost of the forward product);
  :func:`spike_attention` with SSA's neuron after it, whose input is recomputed too;
- :func:`~snn.layers.lean_masks.spike_product_sum` and
  :func:`~snn.layers.lean_masks.spike_mask` (SDSA's column sum of :math:`K \otimes V`
  and its mask, QKFormer's masks): both operands in 1 bit;
- :func:`spike_max_pool`: the pooled spikes in 1 bit; the arg-max indices are recomputed.

A projection that no neuron follows (:func:`project_norm`) keeps its packed input and ``z``
too. Users: Spikformer (SSA, MLP, SPS stem), the Spike-driven Transformer (SDSA's
projections, column sums, masks and linear variant, its MLP; the stem's convolutions) and
QKFormer (Q-K attention, SSA, MLP; the stems' convolutions and max pools).

Fewer and fewer-sized temporaries, too, because with glibc's malloc freed heap blocks stay
resident (after a large block is freed, the threshold above which blocks are mapped and
returned on their own rises up to 32 MiB), so the resident set grows with every hole left
between tensors that outlive a temporary: the fused neuron writes its spikes over its input
(the batch norm's output) and, in the backward pass, its input gradient over the recomputed
input; packing and unpacking (:mod:`snn.cpu_kernels.pack`) check and convert in one pass
without boolean or byte temporaries.

Every backward formula is the one PyTorch's own autograd applies (``addmm``/``mm``,
``native_batch_norm_backward``, ``convolution_backward``, ``max_pool2d_with_indices_backward``,
``bmm``) on the same values, and the neuron's backward is the same fused kernel, so outputs,
gradients and batch-norm running statistics equal the plain path's bit for bit (tested; the
recomputed products run with the same thread count as the forward pass). Per element of a
Spikformer block's input ``[T, B, N, D]`` the plain modules keep about 128 bytes for backward,
this path about 21.

The lean path runs only where it is exact and the plain path would run the fused CPU kernel:
a neuron with a fused engine on the CPU and float (not learnable) parameters, in sequence mode,
no monitor, energy counter or other module hook attached, batch norm in training mode with
affine parameters, contiguous input, gradients enabled. Everywhere else (evaluation,
``torch.no_grad``, autocast, CUDA, a learnable threshold, saved-tensor hooks as activation
checkpointing or offloading install them, :func:`snn.checkpoint` recomputations,
``torch.compile``) the plain modules run unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "lean_ready",
    "pack_input",
    "project",
    "project_norm",
    "run_sequential",
    "spike_attention",
    "spike_max_pool",
    "spike_qkv",
]


def _module_hooks(*modules: nn.Module) -> bool:
    """Whether module hooks (a monitor's, an energy counter's) watch any of ``modules``: the
    lean path does not call their ``forward``, so it steps aside for them."""
    from torch.nn.modules import module as torch_module

    if (torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks
            or torch_module._global_backward_hooks or torch_module._global_backward_pre_hooks):
        return True
    return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
               or m._backward_pre_hooks for m in modules)


def pack_input(x: Tensor) -> tuple[str, Tensor]:
    """``x`` as :func:`project` keeps it (to share among projections of the same input)."""
    return _compress(x.reshape(-1, x.shape[-1]))


def _hooks_active() -> bool:
    return torch._C._autograd._top_saved_tensors_default_hooks(False) is not None


def _in_backward() -> bool:
    return torch._C._current_graph_task_id() != -1


def _grad_context() -> bool:
    """Gradients are recorded in full precision and nothing else watches the saved tensors."""
    return (torch.is_grad_enabled() and not _hooks_active() and not _in_backward()
            and not torch.compiler.is_compiling() and not torch._C._is_any_autocast_enabled())


# --------------------------------------------------------------------------------------------
# packed saved tensors


_INT_VIEW = {torch.float32: torch.int32, torch.float64: torch.int64}


class _Kept:
    """A tensor kept for backward, exactly: binary values in 1 bit (``numpy.packbits``),
    other values that are integers in ``[0, 255]`` in one byte, anything else as is. The
    checks compare bit patterns, so ``-0.0`` or a fraction keeps the tensor as is."""

    def __init__(self, x: Tensor, packed: Any = None):
        self.shape, self.dtype = x.shape, x.dtype
        self.kind, self.tensor = packed if packed is not None else _compress(x)

    def restore(self, saved: Tensor) -> Tensor:
        if self.kind == "bits":
            n = 1
            for s in self.shape:
                n *= s
            kernels = _pack_kernels(self.dtype)
            if kernels is not None:  # straight into the float tensor, no byte temporary
                out = torch.empty(self.shape, dtype=self.dtype)
                kernels.unpack_bits(saved.numpy(), out.view(-1).numpy())
                return out
            bits = np.unpackbits(saved.numpy(), count=n)
            return torch.from_numpy(bits).to(self.dtype).reshape(self.shape)
        if self.kind == "u8":
            return saved.to(self.dtype).reshape(self.shape)
        return saved

    def forget(self) -> None:
        """Drop the reference held outside ``ctx.save_for_backward``."""
        self.tensor = None  # type: ignore[assignment]


def _save_packed(ctx: Any, *tensors: Tensor) -> None:
    """Save ``tensors`` for backward in their smallest exact form (:class:`_Kept`); they come
    back with :func:`_restore_packed`."""
    kept = [_Kept(t) for t in tensors]
    ctx.save_for_backward(*(t.tensor for t in kept))
    for t in kept:
        t.forget()
    ctx.kept = kept


def _restore_packed(ctx: Any) -> tuple[Tensor, ...]:
    """The tensors :func:`_save_packed` saved, as they were."""
    return tuple(k.restore(s) for k, s in zip(ctx.kept, ctx.saved_tensors, strict=True))


def _pack_kernels(dtype: torch.dtype) -> Any:
    """:mod:`snn.cpu_kernels.pack` where this process runs the CPU kernels for ``dtype`` (the
    choice :func:`snn.cpu_kernels.warmup.ensure_compiled` makes once per process, so a cold
    cache compiles nothing in the calling process), else ``None``: the torch route, with the
    same results."""
    try:
        from snn.cpu_kernels import pack
        from snn.cpu_kernels.warmup import ensure_compiled
    except ImportError:
        return None
    return pack if ensure_compiled(False, dtype) else None


def _compress(x: Tensor) -> tuple[str, Tensor]:
    """``(kind, stored)`` of :class:`_Kept` for ``x``."""
    x = x.detach()
    as_int = _INT_VIEW.get(x.dtype)
    if as_int is None or x.device.type != "cpu" or x.numel() == 0:
        return "raw", x
    flat = x.reshape(-1)
    b = flat.view(as_int)
    kernels = _pack_kernels(x.dtype)
    if kernels is not None:  # one pass each, no temporaries
        one = int(torch.ones((), dtype=x.dtype).view(as_int))
        packed = torch.empty((flat.numel() + 7) // 8, dtype=torch.uint8)
        if kernels.pack_bits(b.numpy(), one, packed.numpy()):
            return "bits", packed
        del packed
        q = torch.empty(flat.numel(), dtype=torch.uint8)
        if kernels.pack_u8(flat.numpy(), b.numpy(), q.numpy()):
            return "u8", q
        return "raw", x
    ones = b == torch.ones((), dtype=x.dtype).view(as_int)
    if bool((ones | (b == 0)).all()):
        return "bits", torch.from_numpy(np.packbits(ones.numpy()))
    q = flat.to(torch.uint8)
    if torch.equal(q.to(x.dtype).view(as_int), b):
        return "u8", q
    return "raw", x


# --------------------------------------------------------------------------------------------
# the neuron part


@dataclass
class _NeuronRun:
    """A neuron's fused-kernel run as the plain path would make it."""

    engine: Any
    spec: Any
    beta: Tensor
    c: Tensor
    thr: Tensor
    names: tuple[str, ...]
    desc: Any


def _neuron_run(neuron: nn.Module, x: Tensor) -> _NeuronRun | None:
    """The fused run of ``neuron`` on ``x`` when the plain path would use the CPU kernel with
    float parameters, else ``None``."""
    from snn.backends import BACKENDS, UnsupportedConfiguration, implementations
    from snn.neurons.base import BaseNeuron

    if not isinstance(neuron, BaseNeuron) or not neuron.spiking:
        return None
    if (neuron.step_mode != "sequence" or neuron._want_trace()
            or neuron.__dict__.get("_explicit_state", False) or neuron.__dict__.get("_start_log")
            or neuron.backend not in ("auto", "numba")):
        return None
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return None
    if (neuron.kind, "numba") not in implementations() or not BACKENDS["numba"].is_available():
        return None
    from snn.fused.autograd import _parse_params, _per_neuron, get_engine, make_spec
    from snn.fused.description import get_description

    params = neuron.neuron_params()
    if any(isinstance(v, Tensor) for v in params.values()):
        return None
    engine = get_engine("numba")
    if not engine.prepare(neuron.backend == "numba", x.dtype):
        return None
    desc = get_description(neuron.kind)
    try:
        p = _parse_params(desc, params)
        spec = make_spec(desc, p)
    except (UnsupportedConfiguration, TypeError, ValueError):
        return None
    if desc.state_fields != ("v",):
        return None
    step_shape = x.shape[1:]
    beta_value = 1.0 if desc.unit_decay else p["beta"]
    beta = _per_neuron("beta", beta_value, x, step_shape)
    c_value = 1.0 - float(beta_value) if spec.decay_input else 1.0
    c = torch.full((1,), c_value, dtype=beta.dtype, device=x.device)
    thr = _per_neuron("threshold", p.get("threshold", 1.0), x, step_shape)
    return _NeuronRun(engine, spec, beta, c, thr, desc.state_fields, desc)


def _bn_ready(bn: nn.Module) -> bool:
    return (isinstance(bn, nn.modules.batchnorm._BatchNorm) and bn.training and bn.affine
            and bn.track_running_stats and bn.running_mean is not None)


def _bn_factor(bn: nn.modules.batchnorm._BatchNorm) -> float:
    """The running-statistics factor of ``bn``'s training forward (and its step count)."""
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    return factor


def _split(proj: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """``(op, bn)`` of a ``Linear + BatchNorm`` or time-folded ``Conv2d + BatchNorm2d``."""
    from snn.layers.time import TimeDistributed

    if not isinstance(proj, nn.Sequential) or len(proj) != 2:
        return None
    op, bn = proj[0], proj[1]
    if isinstance(op, nn.Linear) and type(proj) is not TimeDistributed:
        from snn.layers.attention import TokenBatchNorm

        return (op, bn) if type(bn) is TokenBatchNorm else None
    if (isinstance(op, nn.Conv2d) and type(proj) is TimeDistributed
            and type(op)._conv_forward is nn.Conv2d._conv_forward
            and op.padding_mode == "zeros" and not isinstance(op.padding, str)
            and type(bn) is nn.BatchNorm2d):
        return op, bn
    return None


def _projection_parts(proj: nn.Module, x: Tensor,
                      *hooked: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """``(op, bn)`` of ``proj`` where the lean path can run it on ``x`` (``hooked``: other
    modules of the call, which must carry no hooks either), else ``None``."""
    if not _grad_context() or not x.is_contiguous() or x.dim() < 3:
        return None
    parts = _split(proj)
    if parts is None:
        return None
    op, bn = parts
    if (_module_hooks(proj, op, bn, *hooked)
            or type(op).forward not in (nn.Linear.forward, nn.Conv2d.forward)
            or not _bn_ready(bn) or (isinstance(op, nn.Conv2d) and x.dim() != 5)):
        return None
    return parts


def _conv_args(op: nn.Module) -> tuple[list[int], list[int], list[int], int] | None:
    """``(stride, padding, dilation, groups)`` of a convolution, ``None`` for a Linear."""
    if not isinstance(op, nn.Conv2d):
        return None
    return list(op.stride), list(op.padding), list(op.dilation), op.groups


def lean_ready(proj: nn.Module, neuron: nn.Module, x: Tensor) -> bool:
    """Whether :func:`project` runs ``neuron(proj(x))`` on the lean path."""
    return (_projection_parts(proj, x, neuron) is not None
            and _neuron_run(neuron, x) is not None)


class _ProjectNeuron(torch.autograd.Function):
    """``SN(BN(op(x)))``, or ``BN(op(x))`` without a neuron (``meta["run"]`` ``None``; the
    second output is then empty), keeping the packed input and the batch norm's input only."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, bn_weight: Tensor,
                bn_bias: Tensor, v0: Tensor | None, meta: dict[str, Any]
                ) -> tuple[Tensor, Tensor]:
        run: _NeuronRun = meta["run"]
        bn = meta["bn"]
        steps = x.shape[0]
        if meta["conv"] is None:
            xin = x.reshape(-1, x.shape[-1])
            z = _linear(xin, weight, bias)
            out_shape = (*x.shape[:-1], weight.shape[0])
        else:
            xin = x.flatten(0, 1)
            stride, padding, dilation, groups = meta["conv"]
            z = F.conv2d(xin, weight, bias, stride, padding, dilation, groups)
            out_shape = (steps, x.shape[1], *z.shape[1:])
        y, mean, invstd = torch.native_batch_norm(
            z, bn_weight, bn_bias, bn.running_mean, bn.running_var, True, meta["factor"],
            bn.eps)
        if run is None:
            outputs = (y.reshape(out_shape), y.new_empty(0))
            ctx.mark_non_differentiable(outputs[1])
            v_start = None
        else:
            ys = y.reshape(steps, -1)
            n = ys.shape[1]
            zeros = ys.new_zeros(n)
            v_start = v0.reshape(n).contiguous() if v0 is not None else zeros
            # the spikes overwrite the neuron's input (read before each step's spikes are
            # written)
            r = run.engine.forward(run.spec, ys, v_start, zeros, zeros, run.beta, run.c,
                                   run.thr, False, out=ys)
            outputs = (r.spikes.reshape(out_shape), r.vT.reshape(out_shape[1:]))
            del y, ys, r
        kept = _Kept(xin, meta.get("packed"))
        # a widening Linear (the MLP's first) keeps its packed input and recomputes z
        ctx.recompute = (meta["conv"] is None and kept.kind != "raw"
                         and z.shape[-1] > xin.shape[-1])
        ctx.save_for_backward(kept.tensor, None if ctx.recompute else z, mean, invstd, weight,
                              bias, bn_weight, bn_bias, v_start if v0 is not None else None)
        kept.forget()
        ctx.kept, ctx.meta, ctx.has_bias = kept, meta, bias is not None
        ctx.x_shape = x.shape
        ctx.v_shape = v0.shape if v0 is not None else None
        ctx.set_materialize_grads(False)
        return outputs

    @staticmethod
    def backward(ctx: Any, g_s: Tensor | None, g_vt: Tensor | None) -> tuple[Any, ...]:
        saved_x, z, mean, invstd, weight, bias, bn_weight, bn_bias, v_start = ctx.saved_tensors
        meta, run = ctx.meta, ctx.meta["run"]
        if ctx.recompute:  # the same product of the same operands
            z = _linear(ctx.kept.restore(saved_x), weight, bias)
        bn = meta["bn"]
        steps = ctx.x_shape[0]
        needs = ctx.needs_input_grad
        gv0 = None
        if run is None:
            if g_s is None:
                return (None,) * 7
            gy = g_s.reshape(z.shape)  # through the output's reshape, as autograd does
        else:
            # the neuron's input, recomputed from z: the same kernel on the same values
            y = torch.native_batch_norm(z, bn_weight, bn_bias, None, None, True, 0.0,
                                        bn.eps)[0]
            r = _neuron_backward(run, y.reshape(steps, -1), v_start, g_s, g_vt)
            del y
            gv0 = r.gv0.reshape(ctx.v_shape) if needs[5] and v_start is not None else None
            gy = r.gx.reshape(z.shape)
            del r
        gz, g_bnw, g_bnb = torch.ops.aten.native_batch_norm_backward(
            gy, z, bn_weight, None, None, mean, invstd, True, bn.eps, [True, needs[3], needs[4]])
        del z, gy
        xin = ctx.kept.restore(saved_x)
        gx = gw = gb = None
        if meta["conv"] is None:
            if needs[0]:
                gx = gz.mm(weight).reshape(ctx.x_shape)
            if needs[1]:
                gw = gz.t().mm(xin)
            if needs[2] and ctx.has_bias:
                gb = gz.sum(0)
        else:
            stride, padding, dilation, groups = meta["conv"]
            gx, gw, gb = torch.ops.aten.convolution_backward(
                gz, xin, weight, [weight.shape[0]] if ctx.has_bias else None, stride, padding,
                dilation, False, [0] * len(stride), groups,
                [needs[0], needs[1], needs[2] and ctx.has_bias])
            if gx is not None:
                gx = gx.reshape(ctx.x_shape)
        return gx, gw, gb, g_bnw, g_bnb, gv0, None


def project(proj: nn.Module, neuron: nn.Module, x: Tensor, packed: Any = None) -> Tensor:
    """``neuron(proj(x))`` for ``proj`` a ``Linear + TokenBatchNorm`` on tokens
    ``[T, B, N, D]`` or a :class:`~snn.layers.TimeDistributed` ``Conv2d + BatchNorm2d`` on
    ``[T, B, C, H, W]``, on the lean path where it applies (module docstring), else plainly.

    Args:
        proj: the projection (two modules).
        neuron: the neuron after it; its state is read and updated as its own call would.
        x: time-first input.
        packed: :func:`pack_input` of ``x`` when the caller packed it already (the Q, K and
            V projections share their input).

    Returns:
        spikes, ``[T, B, ..., D_out]``.
    """
    if not lean_ready(proj, neuron, x):
        return neuron(proj(x))
    op, bn = _split(proj)  # type: ignore[misc]
    run = _neuron_run(neuron, x)
    assert run is not None
    conv = _conv_args(op)
    state = neuron.state
    v0 = None
    if state is not None:
        v0 = state.v
    meta = {"run": run, "bn": bn, "conv": conv, "factor": _bn_factor(bn), "packed": packed}
    spikes, v_end = _ProjectNeuron.apply(x, op.weight, op.bias, bn.weight, bn.bias, v0, meta)
    neuron.state = run.desc.state(v_end)
    return spikes


def project_norm(proj: nn.Module, x: Tensor) -> Tensor:
    """``proj(x)`` for the projections of :func:`project` that no neuron follows (SDSA's
    output projection, the Spike-driven MLP's second layer, a stem's last convolution),
    keeping the packed input and the batch norm's input, where the lean path applies."""
    parts = None
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        parts = _projection_parts(proj, x)
    if parts is None or parts[0].weight.dtype != x.dtype:
        return proj(x)
    op, bn = parts
    meta = {"run": None, "bn": bn, "conv": _conv_args(op), "factor": _bn_factor(bn),
            "packed": None}
    return _ProjectNeuron.apply(x, op.weight, op.bias, bn.weight, bn.bias, None, meta)[0]


def _linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear`` of a contiguous ``[M, D]`` input, as PyTorch computes it."""
    return torch.addmm(bias, x, weight.t()) if bias is not None else x.mm(weight.t())


# --------------------------------------------------------------------------------------------
# Q K^T V of spikes


class _SpikeQKV(torch.autograd.Function):
    """``s * Q (K^T V)`` as ``torch.matmul`` batches it, keeping Q, K, V packed."""

    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
        q3, kt3, v3 = _qkv_operands(q, k, v)
        kv = torch.bmm(kt3, v3)
        out = torch.bmm(q3, kv).view(q.shape) * scale
        _save_packed(ctx, q3, kt3, v3)
        ctx.scale, ctx.shapes = scale, (q.shape, k.shape, v.shape)
        return out

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Any, ...]:
        q3, kt3, v3 = _restore_packed(ctx)
        kv = torch.bmm(kt3, v3)
        return (*_qkv_backward(g, q3, kt3, v3, kv, ctx.scale, ctx.shapes), None)


def spike_qkv(q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor | None:
    r""":math:`s \cdot Q (K^\top V)` on the lean path (Q, K, V kept in 1 bit), or ``None``
    where it does not apply (no gradient wanted, saved-tensor hooks active, operands of
    different shapes or not spikes-shaped ``[..., N, d]``)."""
    if not _grad_context() or q.dim() < 3 or not (q.shape == k.shape == v.shape):
        return None
    if not (q.requires_grad or k.requires_grad or v.requires_grad):
        return None
    return _SpikeQKV.apply(q, k, v, float(scale))


class _SpikeAttentionNeuron(torch.autograd.Function):
    """``SN(merge(s * Q (K^T V)))`` keeping Q, K, V packed; the neuron's input is recomputed
    (two small products) in the backward pass."""

    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, v0: Tensor | None, scale: float,
                run: _NeuronRun) -> tuple[Tensor, Tensor]:
        kept = [_Kept(t) for t in _qkv_operands(q, k, v)]
        xs = _attention_input(*(t.restore(t.tensor) for t in kept), q.shape, scale)
        n = xs.shape[1]
        zeros = xs.new_zeros(n)
        v_start = v0.reshape(n).contiguous() if v0 is not None else zeros
        r = run.engine.forward(run.spec, xs, v_start, zeros, zeros, run.beta, run.c, run.thr,
                               False, out=xs)
        ctx.save_for_backward(*(t.tensor for t in kept), v_start if v0 is not None else None)
        for t in kept:
            t.forget()
        ctx.kept, ctx.scale, ctx.run = kept, scale, run
        ctx.shapes = (q.shape, k.shape, v.shape)
        ctx.v_shape = v0.shape if v0 is not None else None
        ctx.set_materialize_grads(False)
        merged = (*q.shape[:2], q.shape[3], q.shape[2] * q.shape[4])
        return r.spikes.reshape(merged), r.vT.reshape(merged[1:])

    @staticmethod
    def backward(ctx: Any, g_s: Tensor | None, g_vt: Tensor | None) -> tuple[Any, ...]:
        *packed, v_start = ctx.saved_tensors
        q3, kt3, v3 = (k.restore(s) for k, s in zip(ctx.kept, packed, strict=True))
        q_shape = ctx.shapes[0]
        run = ctx.run
        kv = torch.bmm(kt3, v3)
        xs = _attention_input(q3, kt3, v3, q_shape, ctx.scale, kv)
        r = _neuron_backward(run, xs, v_start, g_s, g_vt)
        del xs
        gv0 = (r.gv0.reshape(ctx.v_shape) if ctx.needs_input_grad[3] and v_start is not None
               else None)
        t, b, h, tokens, d = q_shape
        g = r.gx.view(t, b, tokens, h, d).transpose(2, 3)  # through merge, as autograd does
        del r
        gq, gk, gv = _qkv_backward(g, q3, kt3, v3, kv, ctx.scale, ctx.shapes)
        return gq, gk, gv, gv0, None, None


def _neuron_backward(run: Any, xs: Tensor, v_start: Tensor | None, g_s: Tensor | None,
                     g_vt: Tensor | None) -> Any:
    """The fused neuron's backward over its recomputed input ``xs`` (``[T, N]``), from rest
    when ``v_start`` is ``None``; ``g_s`` and ``g_vt`` are the spikes' and the final
    membrane's gradients (``None`` for zero). The input's gradient overwrites ``xs``."""
    from snn.fused.autograd import Saved

    steps, n = xs.shape
    zeros = xs.new_zeros(n)
    v0 = v_start if v_start is not None else zeros
    saved = Saved(None, None, xs, v0, zeros, zeros, run.beta, run.c, run.thr)
    gs = g_s.reshape(steps, n) if g_s is not None else None
    gvt = g_vt.reshape(n).contiguous() if g_vt is not None else zeros
    return run.engine.backward(run.spec, saved, gs, None, gvt, zeros, zeros, False, False,
                               out=xs)


def _qkv_operands(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The three-dimensional operands ``torch.matmul`` batches ``Q (K^T V)`` into."""
    n, d = q.shape[-2:]
    return (q.reshape(-1, n, d), k.transpose(-2, -1).reshape(-1, d, n), v.reshape(-1, n, d))


def _attention_input(q3: Tensor, kt3: Tensor, v3: Tensor, q_shape: Any, scale: float,
                     kv: Tensor | None = None) -> Tensor:
    """The attention neuron's input ``[T, N]``: ``merge(s * Q (K^T V))``, contiguous."""
    if kv is None:
        kv = torch.bmm(kt3, v3)
    out = torch.bmm(q3, kv).view(q_shape) * scale
    return out.transpose(2, 3).flatten(-2).reshape(q_shape[0], -1).contiguous()


def _qkv_backward(g: Tensor, q3: Tensor, kt3: Tensor, v3: Tensor, kv: Tensor, scale: float,
                  shapes: Any) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of ``s * Q (K^T V)`` with respect to Q, K, V, by autograd's formulas."""
    q_shape, k_shape, v_shape = shapes
    g3 = (g * scale).reshape(q3.shape)
    gq = g3.bmm(kv.transpose(1, 2)).view(q_shape)
    gkv = q3.transpose(1, 2).bmm(g3)
    gkt = gkv.bmm(v3.transpose(1, 2))
    gv = kt3.transpose(1, 2).bmm(gkv).view(v_shape)
    gk = gkt.view(*k_shape[:-2], k_shape[-1], k_shape[-2]).transpose(-2, -1)
    return gq, gk, gv


def spike_attention(qkv: nn.Module, neuron: nn.Module, q: Tensor, k: Tensor,
                    v: Tensor) -> Tensor:
    r"""``neuron(merge(qkv(q, k, v)))`` for SSA's :class:`~snn.layers.attention.SpikeQKV` on
    heads ``[T, B, H, N, d]`` (``merge``: to ``[T, B, N, H d]``), keeping Q, K, V in 1 bit and
    nothing of the neuron's input, where the lean path applies (module docstring)."""
    from snn.layers.attention import SpikeQKV

    def plain() -> Tensor:
        return neuron(qkv(q, k, v).transpose(2, 3).flatten(-2))

    if (type(qkv) is not SpikeQKV or not _grad_context() or q.dim() != 5
            or not (q.shape == k.shape == v.shape) or q.shape[-2] <= q.shape[-1]
            or not (q.requires_grad or k.requires_grad or v.requires_grad)
            or _module_hooks(qkv, neuron)):
        return plain()
    run = _neuron_run(neuron, q)
    if run is None:
        return plain()
    state = neuron.state
    spikes, v_end = _SpikeAttentionNeuron.apply(
        q, k, v, state.v if state is not None else None, float(qkv.scale), run)
    neuron.state = run.desc.state(v_end)
    return spikes


# --------------------------------------------------------------------------------------------
# max pooling of spikes


class _SpikeMaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, pool: tuple) -> Tensor:
        kernel, stride, padding, dilation, ceil = pool
        x4 = x.flatten(0, 1)
        out = torch.ops.aten.max_pool2d_with_indices(x4, kernel, stride, padding, dilation,
                                                     ceil)[0]
        kept = _Kept(x4)
        ctx.save_for_backward(kept.tensor)
        kept.forget()
        ctx.kept, ctx.pool, ctx.x_shape = kept, pool, x.shape
        return out.unflatten(0, x.shape[:2])

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Any, ...]:
        x4 = ctx.kept.restore(ctx.saved_tensors[0])
        kernel, stride, padding, dilation, ceil = ctx.pool
        idx = torch.ops.aten.max_pool2d_with_indices(x4, kernel, stride, padding, dilation,
                                                     ceil)[1]
        gx = torch.ops.aten.max_pool2d_with_indices_backward(
            g.flatten(0, 1), x4, kernel, stride, padding, dilation, ceil, idx)
        return gx.reshape(ctx.x_shape), None


def _pair(v: Any) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(a) for a in v]


def spike_max_pool(pool: nn.Module, x: Tensor) -> Tensor:
    """``pool(x)`` for a :class:`~snn.layers.TimeDistributed` ``MaxPool2d`` on spikes
    ``[T, B, C, H, W]``, keeping the input packed instead of it and the arg-max indices."""
    from snn.layers.time import TimeDistributed

    m = pool[0] if isinstance(pool, TimeDistributed) and len(pool) == 1 else None
    if (type(m) is not nn.MaxPool2d or m.return_indices or x.dim() != 5 or _module_hooks(pool, m)
            or not x.requires_grad or not _grad_context() or not x.is_contiguous()):
        return pool(x)
    stride = m.stride if m.stride is not None else m.kernel_size
    spec = (_pair(m.kernel_size), _pair(stride), _pair(m.padding), _pair(m.dilation),
            bool(m.ceil_mode))
    return _SpikeMaxPool.apply(x, spec)


def run_sequential(layers: nn.Sequential, x: Tensor) -> Tensor:
    """``layers(x)``, with each projection followed by a neuron run by :func:`project` and
    each time-folded ``MaxPool2d`` by :func:`spike_max_pool` (the patch stems' stages)."""
    from snn.layers.time import TimeDistributed
    from snn.neurons.base import BaseNeuron

    mods = list(layers)
    i = 0
    while i < len(mods):
        m = mods[i]
        if i + 1 < len(mods) and isinstance(mods[i + 1], BaseNeuron) and _split(m) is not None:
            x = project(m, mods[i + 1], x)
            i += 2
            continue
        if _split(m) is not None:  # a convolution and batch norm that no neuron follows
            x = project_norm(m, x)
        else:
            x = spike_max_pool(m, x) if isinstance(m, TimeDistributed) else m(x)
        i += 1
    return x
