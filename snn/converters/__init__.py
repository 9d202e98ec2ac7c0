"""ANN-to-SNN conversion.

:func:`convert` turns a trained PyTorch network into a spiking network of IF neurons through a
pipeline of ``torch.fx`` passes (:mod:`snn.converters.passes`); :func:`calibrate` corrects the
layer-wise error after conversion; :class:`QCFS` is the activation for conversion-aware
training; :func:`evaluate` measures ANN and SNN accuracy at several time steps in one run.
"""

from snn.converters.calibration import CALIBRATION_MODES, calibrate
from snn.converters.convert import convert
from snn.converters.errors import ConversionError, UnsupportedOperationError
from snn.converters.evaluate import EvaluationResult, evaluate
from snn.converters.modules import ActivationSite, ChannelAffine, IFActivation, SpikingMaxPool
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
    "EvaluationResult",
    "IFActivation",
    "LayerReport",
    "SpikingMaxPool",
    "UnsupportedOperationError",
    "calibrate",
    "convert",
    "default_passes",
    "evaluate",
    "fold_bn_into",
    "percentile",
    "qcfs",
]
