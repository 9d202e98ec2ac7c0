"""Readers for raw event-camera and spiking-audio files.

Every reader returns a :class:`Recording` ``(events, sensor_size, header)`` whose ``events``
is a numpy structured array in tonic's layout (``x, y, t, p``; ``t`` in microseconds) and
takes ``start``/``stop`` (event indices) and ``t_start``/``t_end`` (microseconds) to read a
range. Invalid files raise :class:`EventFormatError` (a ``ValueError``) naming the file and
the byte offset.

``READERS`` maps format names to readers; :func:`read_events` picks one from the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from snn.datasets.io._common import (
    AUDIO_DTYPE,
    EVENT_DTYPE,
    EventFormatError,
    Recording,
    check_event_file,
    make_events,
)
from snn.datasets.io.aedat2 import read_aedat2
from snn.datasets.io.aedat3 import read_aedat3
from snn.datasets.io.aedat4 import read_aedat4
from snn.datasets.io.atis import read_atis_bin
from snn.datasets.io.hdf5_audio import SpikeAudioFile, read_spike_audio
from snn.datasets.io.matlab import read_mat
from snn.datasets.io.numpy_events import read_numpy_events
from snn.datasets.io.prophesee import read_dat, read_evt2, read_evt3

#: Format name -> reader of whole event files.
READERS: dict[str, Callable[..., Recording]] = {
    "evt2": read_evt2,
    "evt3": read_evt3,
    "dat": read_dat,
    "atis_bin": read_atis_bin,
    "aedat2": read_aedat2,
    "aedat3": read_aedat3,
    "aedat4": read_aedat4,
    "mat": read_mat,
    "numpy": read_numpy_events,
}


def detect_format(path: str | Path) -> str:
    """Name of the reader for ``path`` (from its first bytes, then its suffix).

    Raises:
        FileNotFoundError: nothing exists at ``path``.
        EventFormatError: the format cannot be told, or ``path`` is a directory.
    """
    path = check_event_file(path)
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"#!AER-DAT4"):
        return "aedat4"
    if head.startswith(b"#!AER-DAT3"):
        return "aedat3"
    if head.startswith(b"#!AER-DAT2"):
        return "aedat2"
    if head.startswith(b"MATLAB") or path.suffix == ".mat":
        return "mat"
    suffix = path.suffix.lower()
    if suffix == ".raw":
        text = head.decode("latin-1")
        if "evt 3.0" in text or "format EVT3" in text:
            return "evt3"
        if "evt 2.0" in text or "format EVT2" in text:
            return "evt2"
        raise EventFormatError(path, 0, "RAW header names no EVT 2.0 / 3.0 encoding")
    if suffix == ".dat":
        return "dat"
    if suffix in (".bin", ".bs2"):  # N-MNIST / N-Caltech101 (".bs2": the N-MNIST download)
        return "atis_bin"
    if suffix in (".npy", ".npz"):
        return "numpy"
    raise EventFormatError(path, 0, "unknown event file format")


def read_events(path: str | Path, format: str | None = None, **kwargs: Any) -> Recording:
    """Read an event file with the reader for ``format`` (detected when ``None``)."""
    name = format or detect_format(path)
    if name not in READERS:
        raise ValueError(f"unknown format {name!r}; known: {sorted(READERS)}")
    return READERS[name](path, **kwargs)


__all__ = [
    "AUDIO_DTYPE",
    "EVENT_DTYPE",
    "READERS",
    "EventFormatError",
    "Recording",
    "SpikeAudioFile",
    "detect_format",
    "make_events",
    "read_aedat2",
    "read_aedat3",
    "read_aedat4",
    "read_atis_bin",
    "read_dat",
    "read_events",
    "read_evt2",
    "read_evt3",
    "read_mat",
    "read_numpy_events",
    "read_spike_audio",
]
