r"""Batch normalisation for spiking networks, on time-first sequences ``[T, B, C, ...]``.

Four published normalisations, each foldable for inference:

- :class:`ThresholdDependentBatchNorm` (tdBN; Zheng et al., "Going Deeper With Directly-Trained
  Larger Spiking Neural Networks", AAAI 2021): statistics over time, batch and space together,
  the normalised value scaled by :math:`\alpha V_{th}`;
- :class:`TemporalEffectiveBatchNorm` (TEBN; Duan et al., "Temporal Effective Batch
  Normalization in Spiking Neural Networks", NeurIPS 2022): tdBN's shared statistics, then a
  learnable weight :math:`p_t` per time step;
- :class:`BatchNormThroughTime` (BNTT; Kim & Panda, "Revisiting Batch Normalization for
  Training Low-Latency Deep Spiking Neural Networks From Scratch", Front. Neurosci. 2021):
  separate statistics and scale per time step, no shift;
- :class:`MPBNLIF` (MPBN; Guo et al., "Membrane Potential Batch Normalization for Spiking
  Neural Networks", ICCV 2023): batch norm of the membrane potential after charging, before
  firing, re-parameterised into a per-channel threshold for inference.

Every norm exposes :meth:`folded_affine`, the inference-time affine map ``(scale, shift)`` of
shape ``[T or 1, C]``; :func:`fold_norm` merges it into the preceding convolution or linear
layer (one set of weights when the map does not depend on time, one per step otherwise).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snn.surrogate import Surrogate, get_surrogate

__all__ = [
    "MPBNLIF",
    "NORMS",
    "BatchNormThroughTime",
    "PerStepLayer",
    "TemporalEffectiveBatchNorm",
    "ThresholdDependentBatchNorm",
    "fold_norm",
]


def _check_sequence(name: str, x: Tensor, channels: int, steps: int | None = None) -> None:
    if x.dim() < 3:
        raise ValueError(f"{name}: expected a sequence [T, B, C, ...], got shape {tuple(x.shape)}")
    if x.shape[2] != channels:
        raise ValueError(f"{name}: expected {channels} channels at dim 2, got {tuple(x.shape)}")
    if steps is not None and x.shape[0] != steps:
        raise ValueError(f"{name}: built for T = {steps} steps, got a sequence of {x.shape[0]}")


def _stats_view(v: Tensor, ndim: int) -> Tensor:
    """``[C]`` -> ``[1, C, 1, ...]`` for a ``[N, C, ...]`` tensor of ``ndim`` dimensions."""
    return v.view(1, -1, *([1] * (ndim - 2)))


class _FoldedTimeBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over a ``[T, B, C, ...]`` sequence with time folded into the batch."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"{type(self).__name__}: expected [T*B, C, ...], got {input.shape}")

    def _normalise(self, x: Tensor) -> Tensor:
        _check_sequence(type(self).__name__, x, self.num_features)
        return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])

    def _base_affine(self) -> tuple[Tensor, Tensor]:
        if self.running_var is None:
            raise ValueError(f"{type(self).__name__}: folding needs track_running_stats=True")
        scale = torch.rsqrt(self.running_var + self.eps)
        weight = self.weight if self.affine else torch.ones_like(scale)
        bias = self.bias if self.affine else torch.zeros_like(scale)
        scale = weight * scale
        return scale, bias - self.running_mean * scale


class ThresholdDependentBatchNorm(_FoldedTimeBatchNorm):
    r"""Threshold-dependent batch norm (tdBN), Zheng et al., AAAI 2021.

    .. math:: \hat x = \frac{\alpha V_{th}\,(x - \mathrm{E}[x])}{\sqrt{\mathrm{Var}[x] +
              \epsilon}}, \qquad y = \lambda \hat x + \beta

    with the moments taken per channel over time, batch and space (the paper's Eq. 7-8). The
    paper's :math:`\alpha V_{th}` multiplies the learnable :math:`\lambda`; as in the authors'
    code it is applied once, as the initial value of the scale (``weight = alpha *
    threshold``), which is the same function with one fewer redundant factor.

    Args:
        num_features: channels ``C`` (dim 2 of the input).
        alpha: the paper's :math:`\alpha` (1 in plain layers, :math:`1/\sqrt 2` before a
            residual addition).
        threshold: :math:`V_{th}` of the neurons that follow.
        eps, momentum: as in :class:`torch.nn.BatchNorm1d`.

    Input and output: ``[T, B, C, ...]``. At inference it is an affine map per channel,
    foldable into the previous layer (:func:`fold_norm`).
    """

    def __init__(self, num_features: int, alpha: float = 1.0, threshold: float = 1.0,
                 eps: float = 1e-5, momentum: float = 0.1):
        if alpha <= 0 or threshold <= 0:
            raise ValueError(f"tdBN: alpha and threshold must be > 0, got {alpha}, {threshold}")
        super().__init__(num_features, eps, momentum, affine=True, track_running_stats=True)
        self.alpha = float(alpha)
        self.threshold = float(threshold)
        with torch.no_grad():
            self.weight.fill_(self.alpha * self.threshold)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` ``[T, B, C, ...]``."""
        return self._normalise(x)

    def folded_affine(self) -> tuple[Tensor, Tensor]:
        """Inference map ``y = scale * x + shift``, each ``[1, C]`` (the same at every step)."""
        scale, shift = self._base_affine()
        return scale.unsqueeze(0), shift.unsqueeze(0)


class TemporalEffectiveBatchNorm(_FoldedTimeBatchNorm):
    r"""Temporal effective batch norm (TEBN), Duan et al., NeurIPS 2022.

    .. math:: y_t = p_t \left(\lambda \frac{x_t - \mu}{\sqrt{\sigma^2 + \epsilon}} +
              \beta\right)

    :math:`\mu, \sigma^2` are shared by all time steps (taken over time, batch and space);
    :math:`p_t` is one learnable weight per time step (a scalar per step, as in the authors'
    code; the paper writes :math:`p[t]` without a channel index). At inference it is an affine
    map per (step, channel), foldable into per-step copies of the previous layer.

    Args:
        num_features: channels ``C`` (dim 2 of the input).
        steps: the number of time steps ``T`` the sequences have.
        eps, momentum: as in :class:`torch.nn.BatchNorm1d`.
    """

    def __init__(self, num_features: int, steps: int, eps: float = 1e-5, momentum: float = 0.1):
        if steps < 1:
            raise ValueError(f"TEBN: steps must be >= 1, got {steps}")
        super().__init__(num_features, eps, momentum, affine=True, track_running_stats=True)
        self.steps = int(steps)
        self.p = nn.Parameter(torch.ones(self.steps))

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` ``[T, B, C, ...]`` (``T`` must equal ``steps``)."""
        _check_sequence("TemporalEffectiveBatchNorm", x, self.num_features, self.steps)
        y = self._normalise(x)
        return y * self.p.view(-1, *([1] * (y.dim() - 1)))

    def folded_affine(self) -> tuple[Tensor, Tensor]:
        """Inference map ``y_t = scale[t] * x_t + shift[t]``, each ``[T, C]``."""
        scale, shift = self._base_affine()
        p = self.p.unsqueeze(1)
        return p * scale.unsqueeze(0), p * shift.unsqueeze(0)


class BatchNormThroughTime(nn.Module):
    r"""Batch normalisation through time (BNTT), Kim & Panda, Front. Neurosci. 2021.

    .. math:: y_t = \gamma_t \frac{x_t - \mu_t}{\sqrt{\sigma_t^2 + \epsilon}}

    One set of statistics and one learnable scale :math:`\gamma_t` per time step (the paper's
    Eq. 6); as in the paper there is no shift term.

    Args:
        num_features: channels ``C`` (dim 2 of the input).
        steps: the number of time steps ``T``.
        eps, momentum: as in :class:`torch.nn.BatchNorm1d`.
    """

    def __init__(self, num_features: int, steps: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if steps < 1:
            raise ValueError(f"BNTT: steps must be >= 1, got {steps}")
        self.num_features = int(num_features)
        self.steps = int(steps)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.weight = nn.Parameter(torch.ones(self.steps, self.num_features))
        self.register_buffer("running_mean", torch.zeros(self.steps, self.num_features))
        self.register_buffer("running_var", torch.ones(self.steps, self.num_features))

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` ``[T, B, C, ...]`` step by step (``T`` must equal ``steps``)."""
        _check_sequence("BatchNormThroughTime", x, self.num_features, self.steps)
        out = [
            F.batch_norm(x[t], self.running_mean[t], self.running_var[t], self.weight[t], None,
                         self.training, self.momentum, self.eps)
            for t in range(self.steps)
        ]
        return torch.stack(out)

    def folded_affine(self) -> tuple[Tensor, Tensor]:
        """Inference map ``y_t = scale[t] * x_t + shift[t]``, each ``[T, C]``."""
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        return scale, -self.running_mean * scale

    def extra_repr(self) -> str:
        return f"{self.num_features}, steps={self.steps}, eps={self.eps}, momentum={self.momentum}"


class MPBNLIF(nn.Module):
    r"""LIF neuron with membrane potential batch norm (MPBN), Guo et al., ICCV 2023.

    .. math::
        u_t = \beta\, u_{t-1} (1 - s_{t-1}) + x_t, \qquad
        \tilde u_t = \lambda \frac{u_t - \mu}{\sqrt{\sigma^2 + \epsilon}} + b, \qquad
        s_t = \Theta(\tilde u_t - V_{th})

    The batch norm acts on the charged membrane before firing; its statistics are per channel
    over the batch (and space) at each step, shared by all steps. Reading taken: the
    normalised :math:`\tilde u_t` only decides the spike and the stored membrane is
    :math:`u_t` (the paper's Eq. 9-11 with the hard reset of its LIF). Under this reading the
    paper's re-parameterisation (its Eq. 13) is exact: at inference the neuron is a plain LIF
    with the per-channel threshold

    .. math:: \theta_c = \frac{(V_{th} - b_c)\sqrt{\sigma_c^2 + \epsilon}}{\lambda_c} + \mu_c,

    which :meth:`reparameterize` computes (:math:`\lambda_c > 0` is required: a negative
    scale would turn the comparison around). The authors' code instead stores the normalised
    membrane, whose folded form is then only approximate.

    Each call runs one whole sequence ``[T, B, C, ...]`` from rest (membrane 0) and returns the
    spikes of the same shape.

    Args:
        num_features: channels ``C`` (dim 2).
        beta: membrane decay per step (0.5: :math:`\tau = 2`).
        threshold: :math:`V_{th}`.
        surrogate: surrogate gradient (name or instance, see :mod:`snn.surrogate`).
        detach_reset: stop the gradient through the reset.
        eps, momentum: of the membrane's batch norm.
    """

    spiking = True

    def __init__(self, num_features: int, beta: float = 0.5, threshold: float = 1.0,
                 surrogate: str | Surrogate | None = None, detach_reset: bool = True,
                 eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"MPBNLIF: beta must lie in [0, 1], got {beta}")
        if threshold <= 0:
            raise ValueError(f"MPBNLIF: threshold must be positive, got {threshold}")
        self.num_features = int(num_features)
        self.beta = float(beta)
        self.threshold = float(threshold)
        self.surrogate = get_surrogate(surrogate)
        self.detach_reset = bool(detach_reset)
        self.bn: nn.BatchNorm1d | None = nn.BatchNorm1d(num_features, eps, momentum)
        self.register_buffer("folded_threshold", None)

    @property
    def folded(self) -> bool:
        """Whether :meth:`reparameterize` has replaced the batch norm by a threshold."""
        return self.folded_threshold is not None

    def reparameterize(self) -> MPBNLIF:
        """Fold the membrane batch norm into per-channel thresholds (inference); returns self.

        Raises:
            ValueError: if a channel's batch-norm scale is not positive.
        """
        if self.bn is None:
            return self
        bn = self.bn
        if bool((bn.weight <= 0).any()):
            raise ValueError("MPBNLIF.reparameterize: every batch-norm scale must be positive")
        with torch.no_grad():
            std = torch.sqrt(bn.running_var + bn.eps)
            theta = (self.threshold - bn.bias) * std / bn.weight + bn.running_mean
        self.folded_threshold = theta.detach().clone()
        self.bn = None
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Spikes ``[T, B, C, ...]`` for the input current ``x`` of the same shape."""
        _check_sequence("MPBNLIF", x, self.num_features)
        u = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            u = self.beta * u + x[t]
            if self.bn is not None:
                flat = u.transpose(1, -1).reshape(-1, self.num_features) if u.dim() > 2 else u
                norm = self.bn(flat)
                if u.dim() > 2:
                    norm = norm.reshape(u.transpose(1, -1).shape).transpose(1, -1)
                s = self.surrogate(norm - self.threshold)
            else:
                s = self.surrogate(u - _stats_view(self.folded_threshold, u.dim()))
            keep = 1.0 - (s.detach() if self.detach_reset else s)
            u = u * keep
            spikes.append(s)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, beta={self.beta}, threshold={self.threshold}, "
                f"folded={self.folded}")


class PerStepLayer(nn.Module):
    """A convolution or linear layer with its own weights and bias at each time step: the
    result of folding a per-step affine norm (TEBN, BNTT) into a shared layer.

    Args:
        layer: the shared layer (``nn.Linear`` or ``nn.Conv1d/2d/3d``), used as a template.
        weight: ``[T, *layer.weight.shape]``.
        bias: ``[T, out_channels]``.

    Input ``[T, B, ...]``, output ``[T, B, ...]``.
    """

    def __init__(self, layer: nn.Module, weight: Tensor, bias: Tensor):
        super().__init__()
        self.layer = layer
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[0] != self.weight.shape[0]:
            raise ValueError(
                f"PerStepLayer: folded for T = {self.weight.shape[0]}, got {x.shape[0]} steps"
            )
        if isinstance(self.layer, nn.Linear):
            return torch.stack([F.linear(x[t], self.weight[t], self.bias[t])
                                for t in range(x.shape[0])])
        return torch.stack([self.layer._conv_forward(x[t], self.weight[t], self.bias[t])
                            for t in range(x.shape[0])])


def fold_norm(layer: nn.Module, norm: nn.Module) -> nn.Module:
    """Merge an SNN norm in eval mode into the layer before it, for inference.

    ``norm(TimeDistributed(layer)(x))`` equals ``fold_norm(layer, norm)(x)`` for ``x``
    ``[T, B, ...]``: a tdBN gives one new layer (wrapped in :class:`snn.layers.TimeDistributed`),
    a TEBN or BNTT a :class:`PerStepLayer` with one set of weights per step.

    Args:
        layer: ``nn.Linear`` or ``nn.Conv1d/2d/3d`` whose outputs are the norm's channels.
        norm: :class:`ThresholdDependentBatchNorm`, :class:`TemporalEffectiveBatchNorm` or
            :class:`BatchNormThroughTime` (its running statistics are used).

    Raises:
        TypeError: for another layer or norm type.
        ValueError: if the channel counts differ.
    """
    from snn.layers.time import TimeDistributed

    if not isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        raise TypeError(f"fold_norm: layer must be Linear or Conv, got {type(layer).__name__}")
    if not hasattr(norm, "folded_affine") or isinstance(norm, MPBNLIF):
        raise TypeError(
            f"fold_norm: {type(norm).__name__} has no affine fold (MPBNLIF folds into its "
            "threshold: call reparameterize())"
        )
    out_features = layer.weight.shape[0]
    if norm.num_features != out_features:
        raise ValueError(
            f"fold_norm: layer has {out_features} outputs, norm {norm.num_features} channels"
        )
    with torch.no_grad():
        scale, shift = norm.folded_affine()
        w = layer.weight.detach()
        b = layer.bias.detach() if layer.bias is not None else torch.zeros_like(scale[0])
        shape = (scale.shape[0], -1, *([1] * (w.dim() - 1)))
        weights = w.unsqueeze(0) * scale.view(shape)
        biases = scale * b.unsqueeze(0) + shift
    if scale.shape[0] == 1:
        new = _copy_layer(layer)
        with torch.no_grad():
            new.weight.copy_(weights[0])
            new.bias.copy_(biases[0])
        return TimeDistributed(new)
    return PerStepLayer(_copy_layer(layer), weights.clone(), biases.clone())


def _copy_layer(layer: nn.Module) -> nn.Module:
    if isinstance(layer, nn.Linear):
        return nn.Linear(layer.in_features, layer.out_features, bias=True)
    kwargs: dict[str, Any] = {
        "stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation,
        "groups": layer.groups, "bias": True, "padding_mode": layer.padding_mode,
    }
    return type(layer)(layer.in_channels, layer.out_channels, layer.kernel_size, **kwargs)


NORMS: dict[str, type[nn.Module]] = {
    "tdbn": ThresholdDependentBatchNorm,
    "tebn": TemporalEffectiveBatchNorm,
    "bntt": BatchNormThroughTime,
    "mpbn_lif": MPBNLIF,
}
"""SNN normalisations by name (tests parametrise over this table)."""
