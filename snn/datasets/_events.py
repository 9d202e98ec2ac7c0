"""The structured-array layouts of events, in a module of their own so that light modules
(the emulator) can use them without importing the file readers."""

from __future__ import annotations

import numpy as np

__all__ = ["AUDIO_DTYPE", "EVENT_DTYPE"]

#: Event layout shared with tonic (``tonic.io.events_struct``): packed, 13 bytes per event.
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])

#: Spiking-audio layout shared with tonic's SHD/SSC datasets: channel in ``x``, ``p`` = 1.
AUDIO_DTYPE = np.dtype([("t", np.int64), ("x", np.int64), ("p", np.int64)])
