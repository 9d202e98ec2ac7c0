"""The spiking model zoo: every reference SNN with the input it expects.

Each :class:`ZooEntry` names a builder and describes one time step of one sample of the data it
was designed for, so tools (and the test-suite) can build any entry and feed it input of the
right shape: sequences are ``[T, B, *input_shape]`` and every zoo model returns
``[T, B, num_classes]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from snn.models.lmuformer import lmuformer_speech_commands
from snn.models.meta_spikeformer import meta_spikeformer_imagenet, sdt_cifar10, sdt_cifar100
from snn.models.plif_net import plif_cifar10dvs, plif_dvs_gesture, plif_nmnist
from snn.models.recurrent import nir_cuba_rsnn, rsnn_shd, rsnn_ssc
from snn.models.sew_resnet import sew_resnet18, sew_resnet34, spiking_resnet18, spiking_resnet34
from snn.models.spiking_transformers import (
    qkformer_imagenet,
    sdt_imagenet,
    spikformer_cifar10,
    spikformer_imagenet,
)
from snn.models.vgg import spiking_vgg11, spiking_vgg13, spiking_vgg16

__all__ = ["ZOO", "ZooEntry"]


@dataclass(frozen=True)
class ZooEntry:
    """One reference model.

    Attributes:
        builder: returns the untrained model; keyword arguments override its defaults.
        dataset: the data it is meant for.
        input_shape: one time step of one sample, e.g. ``(2, 34, 34)`` for N-MNIST frames.
        steps: number of time steps (frames or bins) used in the reference.
        num_classes: outputs per step.
        readout: how outputs are reduced over time to class scores (``"mean"`` or ``"max"``,
            see :func:`snn.layers.readout`).
        reference: the paper the architecture follows.
        small: builder options for a reduced-width version (tests, quick checks).
        small_input_shape: a smaller input accepted by the reduced version.
    """

    builder: Callable[..., nn.Module]
    dataset: str
    input_shape: tuple[int, ...]
    steps: int
    num_classes: int
    readout: str = "mean"
    reference: str = ""
    small: dict[str, Any] = field(default_factory=dict)
    small_input_shape: tuple[int, ...] | None = None


_FANG_PLIF = "Fang et al., Incorporating Learnable Membrane Time Constant..., ICCV 2021"
_FANG_SEW = "Fang et al., Deep Residual Learning in Spiking Neural Networks, NeurIPS 2021"
_VGG = "Simonyan & Zisserman 2015 with spiking neurons and batch norm (e.g. Deng et al., ICLR 2022)"
_SHD = "Cramer et al., The Heidelberg Spiking Data Sets..., IEEE TNNLS 2020"
_SPIKFORMER = "Zhou et al., Spikformer: When Spiking Neural Network Meets Transformer, ICLR 2023"
_SDT = "Yao et al., Spike-driven Transformer, NeurIPS 2023"
_QKFORMER = "Zhou et al., QKFormer: Hierarchical Spiking Transformer..., NeurIPS 2024"
_META = "Yao et al., Spike-driven Transformer V2 (Meta-SpikeFormer), ICLR 2024"
_LMUFORMER = "Liu et al., LMUFormer: Low Complexity Yet Powerful Spiking Model..., ICLR 2024"
_NIR = "Pedersen et al., Neuromorphic intermediate representation..., Nat. Commun. 2024"

ZOO: dict[str, ZooEntry] = {
    "plif_nmnist": ZooEntry(
        plif_nmnist, "N-MNIST", (2, 34, 34), 10, 10, reference=_FANG_PLIF,
        small={"channels": 8, "hidden": 32},
    ),
    "plif_dvs_gesture": ZooEntry(
        plif_dvs_gesture, "DVS128 Gesture", (2, 128, 128), 20, 11, reference=_FANG_PLIF,
        small={"channels": 4, "hidden": 16, "input_size": 32}, small_input_shape=(2, 32, 32),
    ),
    "plif_cifar10dvs": ZooEntry(
        plif_cifar10dvs, "CIFAR10-DVS", (2, 128, 128), 20, 10, reference=_FANG_PLIF,
        small={"channels": 4, "hidden": 16, "input_size": 32}, small_input_shape=(2, 32, 32),
    ),
    "spiking_vgg11": ZooEntry(
        spiking_vgg11, "CIFAR10-DVS (48x48 frames)", (2, 48, 48), 10, 10, reference=_VGG,
        small={"width": 0.125}, small_input_shape=(2, 32, 32),
    ),
    "spiking_vgg13": ZooEntry(
        spiking_vgg13, "CIFAR10-DVS (48x48 frames)", (2, 48, 48), 10, 10, reference=_VGG,
        small={"width": 0.125}, small_input_shape=(2, 32, 32),
    ),
    "spiking_vgg16": ZooEntry(
        spiking_vgg16, "CIFAR10-DVS (48x48 frames)", (2, 48, 48), 10, 10, reference=_VGG,
        small={"width": 0.125}, small_input_shape=(2, 32, 32),
    ),
    "sew_resnet18": ZooEntry(
        sew_resnet18, "ImageNet (static images, direct encoding)", (3, 224, 224), 4, 1000,
        reference=_FANG_SEW, small={"width": 0.125, "num_classes": 10},
        small_input_shape=(3, 32, 32),
    ),
    "sew_resnet34": ZooEntry(
        sew_resnet34, "ImageNet (static images, direct encoding)", (3, 224, 224), 4, 1000,
        reference=_FANG_SEW, small={"width": 0.0625, "num_classes": 10, "connect": "iand"},
        small_input_shape=(3, 16, 16),
    ),
    "spiking_resnet18": ZooEntry(
        spiking_resnet18, "ImageNet (static images, direct encoding)", (3, 224, 224), 4, 1000,
        reference=_FANG_SEW, small={"width": 0.125, "num_classes": 10},
        small_input_shape=(3, 32, 32),
    ),
    "spiking_resnet34": ZooEntry(
        spiking_resnet34, "ImageNet (static images, direct encoding)", (3, 224, 224), 4, 1000,
        reference=_FANG_SEW, small={"width": 0.0625, "num_classes": 10},
        small_input_shape=(3, 16, 16),
    ),
    "rsnn_shd": ZooEntry(
        rsnn_shd, "SHD", (700,), 100, 20, readout="max", reference=_SHD,
        small={"hidden": (24,)},
    ),
    "rsnn_ssc": ZooEntry(
        rsnn_ssc, "SSC", (700,), 100, 35, readout="max", reference=_SHD,
        small={"hidden": (16, 16)},
    ),
    "spikformer_cifar10": ZooEntry(
        spikformer_cifar10, "CIFAR-10 (static images, direct encoding)", (3, 32, 32), 4, 10,
        reference=_SPIKFORMER, small={"embed_dim": 32, "num_heads": 2, "depth": 1},
        small_input_shape=(3, 16, 16),
    ),
    "spikformer_imagenet": ZooEntry(
        spikformer_imagenet, "ImageNet (static images, direct encoding)", (3, 224, 224), 4, 1000,
        reference=_SPIKFORMER,
        small={"embed_dim": 32, "num_heads": 2, "depth": 1, "num_classes": 10},
        small_input_shape=(3, 32, 32),
    ),
    "sdt_imagenet": ZooEntry(
        sdt_imagenet, "ImageNet (static images, direct encoding)", (3, 224, 224), 4, 1000,
        reference=_SDT, small={"embed_dim": 32, "num_heads": 2, "depth": 1, "num_classes": 10},
        small_input_shape=(3, 32, 32),
    ),
    "qkformer_imagenet": ZooEntry(
        qkformer_imagenet, "ImageNet (static images, direct encoding)", (3, 224, 224), 4, 1000,
        reference=_QKFORMER,
        small={"embed_dim": 32, "num_heads": (1, 2, 2), "depths": (1, 1, 1), "num_classes": 10},
        small_input_shape=(3, 32, 32),
    ),
    "sdt_cifar10": ZooEntry(
        sdt_cifar10, "CIFAR-10 (static images, direct encoding)", (3, 32, 32), 4, 10,
        reference=_SDT, small={"embed_dim": 32, "num_heads": 2, "depth": 1},
        small_input_shape=(3, 16, 16),
    ),
    "sdt_cifar100": ZooEntry(
        sdt_cifar100, "CIFAR-100 (static images, direct encoding)", (3, 32, 32), 4, 100,
        reference=_SDT, small={"embed_dim": 32, "num_heads": 2, "depth": 1, "num_classes": 10},
        small_input_shape=(3, 16, 16),
    ),
    "meta_spikeformer_imagenet": ZooEntry(
        meta_spikeformer_imagenet, "ImageNet (static images, direct encoding)", (3, 224, 224),
        1, 1000, reference=_META,
        small={"widths": (8, 16, 16, 24), "num_heads": 2, "conv_depths": (1, 0, 0),
               "depths": (1, 0), "num_classes": 10},
        small_input_shape=(3, 16, 16),
    ),
    "lmuformer_speech_commands": ZooEntry(
        lmuformer_speech_commands, "Google Speech Commands V2 (128 log-mel bins per frame)",
        (128,), 128, 35, reference=_LMUFORMER,
        small={"in_features": 12, "dim": 16, "theta": 16.0, "num_classes": 10},
        small_input_shape=(12,),
    ),
    "nir_cuba_rsnn": ZooEntry(
        nir_cuba_rsnn, "Braille reading (NIR paper)", (12,), 256, 7, reference=_NIR,
    ),
}  # fmt: skip
"""Spiking reference models by name."""
