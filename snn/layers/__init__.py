"""Time wrappers for stateless layers, encoders, readouts, losses and monitors."""

from snn.layers.encoders import DeltaEncoder, LatencyEncoder, PoissonEncoder, RepeatEncoder
from snn.layers.losses import membrane_cross_entropy, rate_cross_entropy, spike_count_mse
from snn.layers.monitor import FiringRateRegularizer, Monitor
from snn.layers.readouts import SpikeCount, SpikeRate, TimeLast, TimeMax, TimeMean, readout
from snn.layers.recurrent import Recurrent, RecurrentState
from snn.layers.time import TimeDistributed, fold_time, unfold_time

__all__ = [
    "DeltaEncoder",
    "FiringRateRegularizer",
    "LatencyEncoder",
    "Monitor",
    "PoissonEncoder",
    "Recurrent",
    "RecurrentState",
    "RepeatEncoder",
    "SpikeCount",
    "SpikeRate",
    "TimeDistributed",
    "TimeLast",
    "TimeMax",
    "TimeMean",
    "fold_time",
    "membrane_cross_entropy",
    "rate_cross_entropy",
    "readout",
    "spike_count_mse",
    "unfold_time",
]
