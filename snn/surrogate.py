"""Surrogate spike functions.

A spike is the Heaviside step of the distance to threshold, :math:`s = \\Theta(x)` with
:math:`\\Theta(x) = 1` for :math:`x \\ge 0` and ``0`` otherwise. Its derivative is zero almost
everywhere, so training replaces it in the backward pass by the derivative :math:`g'(x)` of a
smooth primitive :math:`g`. Every surrogate here is a small immutable, picklable object (a frozen
dataclass) with a width/steepness parameter ``alpha``; calling it on a tensor returns spikes whose
gradient is the surrogate derivative.

Surrogates are kept in a registry by name (:data:`SURROGATES`); :func:`get_surrogate` accepts a
name, a surrogate instance or ``None`` (the default, :class:`ATan`). Adding a surrogate means
writing one class with ``primitive`` and ``derivative`` and decorating it with
:func:`register_surrogate`; the test-suite then checks it automatically. The fused kernels
evaluate the same derivative, selected by ``kernel_id``, with the constants of
:meth:`Surrogate.kernel_constants`: the CPU loops (:mod:`snn.cpu_kernels.loops`) compile the
class's own scalar :meth:`Surrogate.kernel` with numba, the CUDA kernels have its C++ twin in
``snn/cuda_kernels/neuron.cuh``. A surrogate with ``kernel_id = -1`` has no kernel derivative
and runs on the reference backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
from torch import Tensor

__all__ = [
    "SURROGATES",
    "ATan",
    "Erf",
    "FastSigmoid",
    "PiecewiseQuadratic",
    "Rectangle",
    "Sigmoid",
    "SoftSign",
    "StraightThrough",
    "Surrogate",
    "Triangle",
    "get_surrogate",
    "heaviside",
    "register_surrogate",
]

SURROGATES: dict[str, type[Surrogate]] = {}
"""Registry of surrogate classes by name (``"atan"``, ``"sigmoid"``, ...)."""


def register_surrogate(cls: type[Surrogate]) -> type[Surrogate]:
    """Class decorator adding a :class:`Surrogate` subclass to :data:`SURROGATES`.

    A surrogate without a derivative in the fused kernels keeps ``kernel_id = -1`` (any number
    of them may be registered): it trains everywhere, and ``backend="auto"`` runs neurons
    using it on the reference backend.

    Raises:
        ValueError: if the name is empty or taken, or the kernel id (when >= 0) is taken or
            comes without a :meth:`Surrogate.kernel`.
    """
    if not cls.name:
        raise ValueError(f"surrogate class {cls.__name__} needs a non-empty name")
    if cls.name in SURROGATES:
        raise ValueError(f"surrogate name {cls.name!r} is already registered")
    if cls.kernel_id >= 0 and any(
        other.kernel_id == cls.kernel_id for other in SURROGATES.values()
    ):
        raise ValueError(f"surrogate kernel_id {cls.kernel_id} of {cls.name!r} is already taken")
    if cls.kernel_id >= 0 and cls.kernel is Surrogate.kernel:
        raise ValueError(
            f"surrogate {cls.name!r} has kernel_id {cls.kernel_id} but no kernel(); define the "
            "scalar kernel derivative or keep kernel_id = -1"
        )
    SURROGATES[cls.name] = cls
    return cls


def heaviside(x: Tensor) -> Tensor:
    """The spike non-linearity without a surrogate: ``1`` where ``x >= 0``, else ``0``."""
    return (x >= 0).to(x.dtype)


class _SpikeFunction(torch.autograd.Function):
    # forward / setup_context kept apart so that torch.func transforms (grad, vmap) accept it
    @staticmethod
    def forward(x: Tensor, surrogate: Surrogate) -> Tensor:
        return heaviside(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Surrogate], output: Tensor) -> None:
        x, surrogate = inputs
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None

    @staticmethod
    def vmap(info: Any, in_dims: tuple[Any, Any], x: Tensor, surrogate: Surrogate
             ) -> tuple[Tensor, Any]:
        return _SpikeFunction.apply(x, surrogate), in_dims[0]


@dataclass(frozen=True)
class Surrogate:
    """Base class: Heaviside forward, ``derivative`` backward.

    Attributes:
        alpha: Steepness (larger is sharper, closer to the true step). Must be positive.
    """

    alpha: float = 1.0
    name: ClassVar[str] = ""
    kernel_id: ClassVar[int] = -1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(
                    f"surrogate {self.name!r}: parameter {f.name} must be a number, got "
                    f"{type(value).__name__}"
                )
            if not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"surrogate {self.name!r}: parameter {f.name} must be positive and finite, "
                    f"got {value}"
                )
            object.__setattr__(self, f.name, float(value))

    def __call__(self, x: Tensor) -> Tensor:
        """Spikes ``Θ(x)`` whose gradient is ``derivative(x)``."""
        return _SpikeFunction.apply(x, self)

    def primitive(self, x: Tensor) -> Tensor:
        """The smooth function whose derivative is the surrogate gradient."""
        raise NotImplementedError(f"{type(self).__name__} must define primitive()")

    def derivative(self, x: Tensor) -> Tensor:
        """The surrogate gradient :math:`g'(x)` used in the backward pass."""
        raise NotImplementedError(f"{type(self).__name__} must define derivative()")

    @property
    def kernel_params(self) -> tuple[float, ...]:
        """Parameters passed to the fused kernels, in declaration order."""
        return tuple(getattr(self, f.name) for f in fields(self))

    @staticmethod
    def kernel(z: float, k0: float, k1: float, k2: float, one: float, zero: float) -> float:
        """The derivative at one point ``z`` as the fused CPU kernels evaluate it (numba
        compiles it into :mod:`snn.cpu_kernels.loops`; ``neuron.cuh`` holds the same
        arithmetic for CUDA as case ``kernel_id`` of ``surrogate_grad``).

        Written for numba: scalar arithmetic, ``math`` functions, ``abs``/``min``/``max`` and
        conditional expressions, on ``z`` and the constants ``k0..k2`` of
        :meth:`kernel_constants`. Every value is in the input's dtype: use ``one`` and
        ``zero`` instead of number literals (a literal would promote float32 to float64), and
        keep the operations in the order of :meth:`derivative`.

        Raises:
            NotImplementedError: for a surrogate without a kernel derivative.
        """
        raise NotImplementedError("this surrogate has no fused-kernel derivative")

    def kernel_constants(self) -> tuple[float, float, float]:
        """Constants ``(k0, k1, k2)`` of the derivative as the fused kernels evaluate it
        (:meth:`kernel`, and case ``kernel_id`` of ``surrogate_grad`` in ``neuron.cuh``).
        They are computed in double precision exactly as :meth:`derivative` computes its
        scalar factors, so a float32 kernel performs the same float32 operations as the
        reference.

        Raises:
            NotImplementedError: for a surrogate without a kernel derivative.
        """
        raise NotImplementedError(f"{type(self).__name__} has no fused-kernel derivative")


@register_surrogate
@dataclass(frozen=True)
class ATan(Surrogate):
    r"""Arctangent (Fang et al. 2021).

    .. math:: g(x) = \frac{1}{\pi}\arctan\left(\frac{\pi}{2}\alpha x\right) + \frac12, \qquad
              g'(x) = \frac{\alpha/2}{1 + (\frac{\pi}{2}\alpha x)^2}
    """

    alpha: float = 2.0
    name: ClassVar[str] = "atan"
    kernel_id: ClassVar[int] = 0

    def primitive(self, x: Tensor) -> Tensor:
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def derivative(self, x: Tensor) -> Tensor:
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x) ** 2)

    @staticmethod
    def kernel(z: float, k0: float, k1: float, k2: float, one: float, zero: float) -> float:
        t = k1 * z  # (a/2) / (1 + (k1 z)^2)
        return k0 / (one + t * t)

    def kernel_constants(self) -> tuple[float, float, float]:
        a = self.alpha
        return (a / 2, math.pi / 2 * a, 0.0)


@register_surrogate
@dataclass(frozen=True)
class Sigmoid(Surrogate):
    r"""Logistic sigmoid.

    .. math:: g(x) = \sigma(\alpha x), \qquad g'(x) = \alpha\,\sigma(\alpha x)(1-\sigma(\alpha x))
    """

    alpha: float = 4.0
    name: ClassVar[str] = "sigmoid"
    kernel_id: ClassVar[int] = 1

    def primitive(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.alpha * x)

    def derivative(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)

    @staticmethod
    def kernel(z: float, k0: float, k1: float, k2: float, one: float, zero: float) -> float:
        e = one / (one + math.exp(-(k0 * z)))  # k0 s (1 - s), s = sigmoid(k0 z)
        return k0 * e * (one - e)

    def kernel_constants(self) -> tuple[float, float, float]:
        a = self.alpha
        return (a, 0.0, 0.0)


@register_surrogate
@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    r"""Fast sigmoid of SuperSpike (Zenke & Ganguli 2018), unnormalised as in that paper.

    .. math:: g(x) = \frac{x}{1 + \alpha|x|}, \qquad g'(x) = \frac{1}{(1 + \alpha|x|)^2}
    """

    alpha: float = 10.0
    name: ClassVar[str] = "fast_sigmoid"
    kernel_id: ClassVar[int] = 2

    def primitive(self, x: Tensor) -> Tensor:
        return x / (1 + self.alpha * x.abs())

    def derivative(self, x: Tensor) -> Tensor:
        return 1 / (1 + self.alpha * x.abs()) ** 2

    @staticmethod
    def kernel(z: float, k0: float, k1: float, k2: float, one: float, zero: float) -> float:
        q = one + k0 * abs(z)  # 1 / (1 + k0 |z|)^2
        return one / (q * q)

    def kernel_constants(self) -> tuple[float, float, float]:
        a = self.alpha
        return (a, 0.0, 0.0)


@register_surrogate
@dataclass(frozen=True)
class SoftSign(Surrogate):
    r"""Soft-sign step, normalised to integrate to one.

    .. math:: g(x) = \frac12\,\frac{\alpha x}{1 + \alpha|x|} + \frac12, \qquad
              g'(x) = \frac{\alpha}{2(1 + \alpha|x|)^2}
    """

    alpha: float = 2.0
    name: ClassVar[str] = "soft_sign"
    kernel_id: ClassVar[int] = 3

    def primitive(self, x: Tensor) -> Tensor:
        return 0.5 * self.alpha * x / (1 + self.alpha * x.abs()) + 0.5

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha / (2 * (1 + self.alpha * x.abs()) ** 2)

    @staticmethod
    def kernel(z: float, k0: float, k1: float, k2: float, one: float, zero: float) -> float:
        q = one + k0 * abs(z)  # k0 / (2 (1 + k0 |z|)^2)
        q = q * q
        return k0 / (q + q)

    def kernel_constants(self) -> tuple[float, float, float]:
        a = self.alpha
        return (a, 0.0, 0.0)


@register_surrogate
@dataclass(frozen=True)
class Triangle(Surrogate):
    r"""Triangle derivative (Esser et al. 2016; Bellec et al. 2018); its primitive is the
    piecewise-quadratic step that SpikingJelly calls ``PiecewiseQuadratic``.

    .. math:: g'(x) = \max(0,\ \alpha - \alpha^2 |x|)
    """

    alpha: float = 1.0
    name: ClassVar[str] = "triangle"
    kernel_id: ClassVar[int] = 4

    def primitive(self, x: Tensor) -> Tensor:
        a = self.alpha
        inner = -0.5 * a * a * x.abs() * x + a * x + 0.5
        upper = torch.where(x > 1 / a, torch.ones_like(x), inner)
        return torch.where(x < -1 / a, torch.zeros_like(x), upper)

    def derivative(self, x: Tensor) -> Tensor:
        return torch.clamp(self.alpha - self.alpha**2 * x.abs(), min=0)

    @staticmethod
    def kernel(z: float, k0: float, k1: float, k2: float, one: float, zero: float) -> float:
        return max(zero, k0 - k1 * abs(z))  # max(0, k0 - k1 |z|)

    def kernel_constants(self) -> tuple[float, float, float]:
        a = self.alpha
        return (a, a**2, 0.0)


@register_surrogate
@dataclass(frozen=True)
class PiecewiseQuadratic(Surrogate):
    r"""Quadratic-bump derivative (Epanechnikov kernel): the derivative itself is
    piecewise quadratic, the primitive is the cubic smooth-step. Compact support like
    :class:`Triangle`, but with a continuous derivative at the support edges.

    .. math:: g'(x) = \frac{3\alpha}{4}\max\left(0,\ 1 - (\alpha x)^2\right)
    """

    alpha: float = 1.0
    name: ClassVar[str] = "piecewise_quadratic"
    kernel_id: ClassVar[int] = 5

    def primitive(self, x: Tensor) -> Tensor:
        u = torch.clamp(self.alpha * x, -1.0, 1.0)
        return 0.5 + 0.75 * u - 0.25 * u**3

    def derivative(self, x: Tensor) -> Tensor:
        return 0.75 * self.alpha * torch.clamp(1 - (self.alpha * x) ** 2, min=0)

    @staticmethod
    def kernel(z: float, k0: float, k1: float, k2: float, one: float, zero: float) -> float:
        t = k1 * z  # k0 max(0, 1 - (k1 z)^2)
        return k0 * max(zero, one - t * t)

    def kernel_constants(self) -> tuple[float, float, float]:
        a = self.alpha
        return (0.75 * a, a, 0.0)


@register_surrogate
@dataclass(frozen=True)
class Rectangle(Surrogate):
    r"""Rectangle (boxcar) of width :math:`1/\alpha` and unit area.

    .. math:: g'(x) = \alpha\ \text{if}\ |x| < \frac{1}{2\alpha}\ \text{else}\ 0
    """

    alpha: float = 1.0
    name: ClassVar[str] = "rectangle"
    kernel_id: ClassVar[int] = 6

    def primitive(self, x: Tensor) -> Tensor:
        return torch.clamp(self.alpha * x + 0.5, 0.0, 1.0)

    def derivative(self, x: Tensor) -> Tensor:
        return (x.abs() < 0.5 / self.alpha).to(x.dtype) * self.alpha

    @staticmethod
    def kernel(z: float, k0: float, k1: float, k2: float, one: float, zero: float) -> float:
        return k0 if abs(z) < k1 else zero  # k0 if |z| < k1

    def kernel_constants(self) -> tuple[float, float, float]:
        a = self.alpha
        return (a, 0.5 / a, 0.0)


@register_surrogate
@dataclass(frozen=True)
class Erf(Surrogate):
    r"""Gaussian derivative; the primitive is the Gaussian CDF (error function).

    .. math:: g(x) = \frac12\left(1 + \mathrm{erf}\frac{\alpha x}{\sqrt2}\right), \qquad
              g'(x) = \frac{\alpha}{\sqrt{2\pi}} e^{-(\alpha x)^2/2}
    """

    alpha: float = 2.0
    name: ClassVar[str] = "erf"
    kernel_id: ClassVar[int] = 7

    def primitive(self, x: Tensor) -> Tensor:
        return 0.5 * (1 + torch.erf(self.alpha * x / math.sqrt(2)))

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha / math.sqrt(2 * math.pi) * torch.exp(-0.5 * (self.alpha * x) ** 2)

    @staticmethod
    def kernel(z: float, k0: float, k1: float, k2: float, one: float, zero: float) -> float:
        t = k1 * z  # k0 exp(k2 (k1 z)^2)
        return k0 * math.exp(k2 * (t * t))

    def kernel_constants(self) -> tuple[float, float, float]:
        a = self.alpha
        return (a / math.sqrt(2 * math.pi), a, -0.5)


@register_surrogate
@dataclass(frozen=True)
class StraightThrough(Surrogate):
    r"""Straight-through estimator: the gradient passes unchanged, scaled by ``alpha``.

    .. math:: g(x) = \alpha x, \qquad g'(x) = \alpha
    """

    alpha: float = 1.0
    name: ClassVar[str] = "straight_through"
    kernel_id: ClassVar[int] = 8

    def primitive(self, x: Tensor) -> Tensor:
        return self.alpha * x

    def derivative(self, x: Tensor) -> Tensor:
        return torch.full_like(x, self.alpha)

    @staticmethod
    def kernel(z: float, k0: float, k1: float, k2: float, one: float, zero: float) -> float:
        return k0

    def kernel_constants(self) -> tuple[float, float, float]:
        a = self.alpha
        return (a, 0.0, 0.0)


def get_surrogate(surrogate: str | Surrogate | None = None, **params: float) -> Surrogate:
    """Return a surrogate instance.

    Args:
        surrogate: a registered name (see :data:`SURROGATES`), an instance (returned as is), or
            ``None`` for the default :class:`ATan`.
        **params: parameters (``alpha``) for a surrogate given by name.

    Raises:
        ValueError: for an unknown name, or parameters given with an instance.
        TypeError: for anything else.
    """
    if surrogate is None:
        surrogate = "atan"
    if isinstance(surrogate, Surrogate):
        if params:
            raise ValueError(
                f"surrogate parameters {sorted(params)} given with a surrogate instance; "
                "set them on the instance instead"
            )
        return surrogate
    if isinstance(surrogate, str):
        try:
            cls = SURROGATES[surrogate]
        except KeyError:
            raise ValueError(
                f"unknown surrogate {surrogate!r}; expected one of {sorted(SURROGATES)}"
            ) from None
        return cls(**params)
    raise TypeError(
        f"surrogate must be a name, a Surrogate instance or None, got {type(surrogate).__name__}"
    )
