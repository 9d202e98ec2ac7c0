"""Time wrappers for stateless layers, encoders, readouts, losses, monitors, spiking attention
and SNN normalisations."""

from snn.layers.attention import (
    QKAttention,
    SpikeDrivenSelfAttention,
    SpikingSelfAttention,
)
from snn.layers.encoders import DeltaEncoder, LatencyEncoder, PoissonEncoder, RepeatEncoder
from snn.layers.losses import (
    membrane_cross_entropy,
    per_step_cross_entropy,
    rate_cross_entropy,
    spike_count_mse,
    tet_loss,
)
from snn.layers.monitor import FiringRateRegularizer, Monitor
from snn.layers.norm import (
    MPBNLIF,
    BatchNormThroughTime,
    TemporalEffectiveBatchNorm,
    ThresholdDependentBatchNorm,
    fold_norm,
)
from snn.layers.readouts import SpikeCount, SpikeRate, TimeLast, TimeMax, TimeMean, readout
from snn.layers.recurrent import Recurrent, RecurrentState
from snn.layers.repconv import RepConv
from snn.layers.time import TimeDistributed, fold_time, unfold_time

__all__ = [
    "MPBNLIF",
    "BatchNormThroughTime",
    "DeltaEncoder",
    "FiringRateRegularizer",
    "LatencyEncoder",
    "Monitor",
    "PoissonEncoder",
    "QKAttention",
    "Recurrent",
    "RecurrentState",
    "RepConv",
    "RepeatEncoder",
    "SpikeCount",
    "SpikeDrivenSelfAttention",
    "SpikeRate",
    "SpikingSelfAttention",
    "TemporalEffectiveBatchNorm",
    "ThresholdDependentBatchNorm",
    "TimeDistributed",
    "TimeLast",
    "TimeMax",
    "TimeMean",
    "fold_norm",
    "fold_time",
    "membrane_cross_entropy",
    "per_step_cross_entropy",
    "rate_cross_entropy",
    "readout",
    "spike_count_mse",
    "tet_loss",
    "unfold_time",
]
