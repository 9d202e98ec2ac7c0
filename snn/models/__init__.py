"""Reference architectures used by recipes, benchmarks and the energy estimators.

Models are built by name through :data:`MODELS` (``create_model("resnet18")``); nothing is
downloaded: every builder returns an untrained network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from snn.models.resnet import BasicBlock, ResNet, resnet18

__all__ = ["MODELS", "BasicBlock", "ResNet", "create_model", "resnet18"]

MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
}
"""Model builders by name; each returns an untrained ``nn.Module``."""


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a model by registry name, passing ``kwargs`` to its builder.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}") from None
    return builder(**kwargs)
