"""Time wrappers for stateless layers, encoders, readouts, losses, monitors, spiking attention,
SNN normalisations, and the sequence blocks of spiking language and sequence models (spiking
Legendre Memory Units, spiking RWKV)."""

from snn.layers.attention import (
    QKAttention,
    SpikeDrivenSelfAttention,
    SpikingSelfAttention,
)
from snn.layers.encoders import DeltaEncoder, LatencyEncoder, PoissonEncoder, RepeatEncoder
from snn.layers.lmu import (
    LegendreMemory,
    SpikingLMU,
    legendre_readout,
    legendre_state_space,
    legendre_zoh,
)
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
from snn.layers.rwkv import (
    SpikingChannelMix,
    SpikingRWKVBlock,
    SpikingTimeMix,
    wkv,
    wkv_recurrent,
)
from snn.layers.sequence import SEQUENCE_BLOCKS, create_sequence_block
from snn.layers.time import TimeDistributed, fold_time, unfold_time

__all__ = [
    "MPBNLIF",
    "SEQUENCE_BLOCKS",
    "BatchNormThroughTime",
    "DeltaEncoder",
    "FiringRateRegularizer",
    "LatencyEncoder",
    "LegendreMemory",
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
    "SpikingChannelMix",
    "SpikingLMU",
    "SpikingRWKVBlock",
    "SpikingSelfAttention",
    "SpikingTimeMix",
    "TemporalEffectiveBatchNorm",
    "ThresholdDependentBatchNorm",
    "TimeDistributed",
    "TimeLast",
    "TimeMax",
    "TimeMean",
    "create_sequence_block",
    "fold_norm",
    "fold_time",
    "legendre_readout",
    "legendre_state_space",
    "legendre_zoh",
    "membrane_cross_entropy",
    "per_step_cross_entropy",
    "rate_cross_entropy",
    "readout",
    "spike_count_mse",
    "tet_loss",
    "unfold_time",
    "wkv",
    "wkv_recurrent",
]
