"""ANN-to-SNN conversion.

:func:`convert` turns a trained PyTorch network into a spiking network of IF neurons through a
pipeline of ``torch.fx`` passes (:mod:`snn.converters.passes`); transformers (LayerNorm, GELU,
SiLU, softmax attention, ``nn.MultiheadAttention``, products of two activations) convert by
expectation compensation with signed multi-threshold neurons (:mod:`snn.converters.expectation`);
:func:`calibrate` corrects the layer-wise error after conversion; :class:`QCFS` is the
activation for conversion-aware training; :func:`finetune` trains a converted network with
surrogate gradients while reducing its time steps down to one; :func:`evaluate` measures ANN and
SNN accuracy at several time steps in one run, and :class:`TopKCutoff` stops each sample early.
"""

from snn.converters.calibration import CALIBRATION_MODES, calibrate
from snn.converters.convert import convert
from snn.converters.early_exit import EarlyExitResult, TopKCutoff
from snn.converters.errors import ConversionError, UnsupportedOperationError
from snn.converters.evaluate import EvaluationResult, evaluate
from snn.converters.expectation import Expectation, SignedIFActivation
from snn.converters.finetune import StageResult, finetune
from snn.converters.modules import (
    ActivationSite,
    ChannelAffine,
    IFActivation,
    ResidualAdd,
    SpikingMaxPool,
)
from snn.converters.network import ENCODINGS, ConvertedSNN
from snn.converters.normalization import NORMALIZERS, percentile
from snn.converters.passes import (
    ConversionConfig,
    ConversionContext,
    ConversionPass,
    default_passes,
    fold_bn_into,
)
from snn.converters.qcfs import QCFS, qcfs
from snn.converters.report import ConversionReport, LayerReport

__all__ = [
    "CALIBRATION_MODES",
    "ENCODINGS",
    "NORMALIZERS",
    "QCFS",
    "ActivationSite",
    "ChannelAffine",
    "ConversionConfig",
    "ConversionContext",
    "ConversionError",
    "ConversionPass",
    "ConversionReport",
    "ConvertedSNN",
    "EarlyExitResult",
    "EvaluationResult",
    "Expectation",
    "IFActivation",
    "LayerReport",
    "ResidualAdd",
    "SignedIFActivation",
    "SpikingMaxPool",
    "StageResult",
    "TopKCutoff",
    "UnsupportedOperationError",
    "calibrate",
    "convert",
    "default_passes",
    "evaluate",
    "finetune",
    "fold_bn_into",
    "percentile",
    "qcfs",
]
