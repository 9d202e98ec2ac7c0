"""Spiking-audio HDF5 files of the Heidelberg datasets (SHD, SSC).

Layout: ``spikes/times`` (variable-length float arrays, seconds), ``spikes/units``
(variable-length integer arrays, channel 0..699) and ``labels`` (one int per sample), all of
the same length. Samples are returned in tonic's audio layout: fields ``t`` (microseconds,
rounded), ``x`` (channel), ``p`` (always 1), sensor size ``(700, 1, 1)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snn.datasets.io._common import (
    AUDIO_DTYPE,
    EventFormatError,
    PathLike,
    Recording,
    check_coordinates,
    check_event_file,
)

N_CHANNELS = 700
SENSOR_SIZE = (N_CHANNELS, 1, 1)


class SpikeAudioFile:
    """Random access to the samples of one SHD/SSC ``.h5`` file.

    The HDF5 handle is opened lazily in each process (safe with DataLoader workers).

    Args:
        path: The ``.h5`` file.
        n_channels: Number of input channels (700 for SHD and SSC).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        EventFormatError: groups missing or of different lengths.
    """

    def __init__(self, path: PathLike, n_channels: int = N_CHANNELS) -> None:
        self.path = check_event_file(path)
        self.n_channels = n_channels
        self._h5: Any = None
        self._pid: int | None = None
        f = self.handle()
        for key in ("spikes/times", "spikes/units", "labels"):
            if key not in f or not hasattr(f[key], "shape") or len(f[key].shape) != 1:
                raise EventFormatError(self.path, None, f"missing 1-D dataset {key!r}")
        n = {k: len(f[k]) for k in ("spikes/times", "spikes/units", "labels")}
        if len(set(n.values())) != 1:
            raise EventFormatError(self.path, None, f"datasets have different lengths {n}")
        self._len = n["labels"]

    def handle(self) -> Any:
        """The open ``h5py.File`` of this process (reopened after a fork)."""
        import os

        import h5py

        if self._h5 is None or self._pid != os.getpid():
            try:
                self._h5 = h5py.File(self.path, "r")
            except OSError as exc:
                raise EventFormatError(self.path, 0, f"not a readable HDF5 file: {exc}") from exc
            self._pid = os.getpid()
        return self._h5

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"] = None
        state["_pid"] = None
        return state

    def __len__(self) -> int:
        return self._len

    @property
    def labels(self) -> np.ndarray:
        """All labels as an int64 array."""
        return np.asarray(self.handle()["labels"][:], dtype=np.int64)

    def read(self, index: int) -> tuple[Recording, int]:
        """Events and label of sample ``index``.

        Raises:
            IndexError: ``index`` out of range.
            EventFormatError: times and units of different lengths, negative or non-finite
                times, channels outside ``0..n_channels-1``.
        """
        if not -self._len <= index < self._len:
            raise IndexError(f"sample {index} out of range for {self._len} samples in {self.path}")
        f = self.handle()
        try:
            times = np.asarray(f["spikes/times"][index], dtype=np.float64)
            units = np.asarray(f["spikes/units"][index])
            label = int(f["labels"][index])
        except (OSError, ValueError, TypeError) as exc:
            if isinstance(exc, EventFormatError):
                raise
            raise EventFormatError(self.path, None, f"sample {index} unreadable: {exc}") from exc
        if times.shape != units.shape:
            raise EventFormatError(
                self.path, None, f"sample {index}: {times.size} times but {units.size} units"
            )
        if times.size and (not np.all(np.isfinite(times)) or times.min() < 0):
            raise EventFormatError(self.path, None, f"sample {index}: negative or non-finite time")
        events = np.empty(times.size, dtype=AUDIO_DTYPE)
        events["t"] = np.rint(times * 1e6)
        events["x"] = units
        events["p"] = 1
        size = (self.n_channels, 1, 1)
        check_coordinates(events, size, f"{self.path}[{index}]")
        return Recording(events, size, {"index": index}), label


def read_spike_audio(path: PathLike, index: int) -> Recording:
    """Events of sample ``index`` of an SHD/SSC file (see :class:`SpikeAudioFile`)."""
    return SpikeAudioFile(path).read(index)[0]
