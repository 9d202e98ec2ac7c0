"""Surrogates as a user would add them: registered, without a fused-kernel derivative
(``kernel_id = -1``). Imported by ``tests/conftest.py`` so every registry-parametrised test
covers them, and neurons using them train on ``backend="auto"`` through the reference."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from snn.surrogate import SURROGATES, Surrogate, register_surrogate


@dataclass(frozen=True)
class UserExponential(Surrogate):
    r"""Laplace-shaped derivative (the exponential PDF of SLAYER, Shrestha & Orchard 2018):
    :math:`g'(x) = \frac{\alpha}{2} e^{-\alpha |x|}`."""

    alpha: float = 2.0
    name: ClassVar[str] = "user_exponential"

    def primitive(self, x: Tensor) -> Tensor:
        return 0.5 + 0.5 * torch.sign(x) * (1 - torch.exp(-self.alpha * x.abs()))

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha / 2 * torch.exp(-self.alpha * x.abs())


@dataclass(frozen=True)
class UserAlgebraic(Surrogate):
    r"""Algebraic sigmoid: :math:`g(x) = \frac12 + \frac{\alpha x}{2\sqrt{1 + (\alpha x)^2}}`."""

    alpha: float = 2.0
    name: ClassVar[str] = "user_algebraic"

    def primitive(self, x: Tensor) -> Tensor:
        u = self.alpha * x
        return 0.5 + 0.5 * u / torch.sqrt(1 + u * u)

    def derivative(self, x: Tensor) -> Tensor:
        u = self.alpha * x
        return 0.5 * self.alpha / (1 + u * u) ** 1.5


for _cls in (UserExponential, UserAlgebraic):
    if _cls.name not in SURROGATES:  # imported once per process, but be safe
        register_surrogate(_cls)

USER_SURROGATES = ("user_exponential", "user_algebraic")
assert math.isfinite(UserAlgebraic().derivative(torch.tensor(0.0)).item())
