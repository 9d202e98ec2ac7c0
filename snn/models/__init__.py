"""Reference architectures used by recipes, benchmarks and the energy estimators.

Models are built by name through :data:`MODELS` (``create_model("resnet18")``); nothing is
downloaded: every builder returns an untrained network.

The spiking reference models (the zoo) are also described in :data:`ZOO`, with the dataset,
input shape, number of time steps and paper each one follows; every zoo model takes a
time-first sequence ``[T, B, ...]`` and returns ``[T, B, num_classes]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from snn.layers.recurrent import Recurrent
from snn.models.blocks import TimeConsistentDropout, VotingLayer
from snn.models.lmuformer import LMUFormer, lmuformer_speech_commands
from snn.models.meta_spikeformer import (
    MetaSpikeFormer,
    meta_spikeformer_imagenet,
    sdt_cifar10,
    sdt_cifar100,
)
from snn.models.plif_net import PLIFNet, plif_cifar10dvs, plif_dvs_gesture, plif_nmnist
from snn.models.recurrent import CubaRSNN, RecurrentSNN, nir_cuba_rsnn, rsnn_shd, rsnn_ssc
from snn.models.resnet import BasicBlock, ResNet, resnet18
from snn.models.sew_resnet import SEWResNet, sew_resnet18, sew_resnet34, spiking_resnet18
from snn.models.spikegpt import (
    LANGUAGE_MODELS,
    SpikeGPT,
    generate,
    spikegpt_216m,
    spikegpt_tiny,
)
from snn.models.spiking_transformers import (
    QKFormer,
    SpikeDrivenTransformer,
    Spikformer,
    count_parameters,
    qkformer_imagenet,
    sdt_imagenet,
    spikformer_cifar10,
    spikformer_imagenet,
)
from snn.models.vgg import SpikingVGG, spiking_vgg11
from snn.models.zoo import ZOO, ZooEntry

__all__ = [
    "LANGUAGE_MODELS",
    "MODELS",
    "ZOO",
    "BasicBlock",
    "CubaRSNN",
    "LMUFormer",
    "MetaSpikeFormer",
    "PLIFNet",
    "QKFormer",
    "Recurrent",
    "RecurrentSNN",
    "ResNet",
    "SEWResNet",
    "SpikeDrivenTransformer",
    "SpikeGPT",
    "Spikformer",
    "SpikingVGG",
    "TimeConsistentDropout",
    "VotingLayer",
    "ZooEntry",
    "count_parameters",
    "create_model",
    "generate",
    "lmuformer_speech_commands",
    "meta_spikeformer_imagenet",
    "nir_cuba_rsnn",
    "plif_cifar10dvs",
    "plif_dvs_gesture",
    "plif_nmnist",
    "qkformer_imagenet",
    "resnet18",
    "rsnn_shd",
    "rsnn_ssc",
    "sdt_cifar10",
    "sdt_cifar100",
    "sdt_imagenet",
    "sew_resnet18",
    "sew_resnet34",
    "spikegpt_216m",
    "spikegpt_tiny",
    "spikformer_cifar10",
    "spikformer_imagenet",
    "spiking_resnet18",
    "spiking_vgg11",
]

MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    **{name: entry.builder for name, entry in ZOO.items()},
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
