"""Events saved with numpy: ``.npy`` structured arrays or ``.npz`` files of ``t, x, y, p``.

Field names must be ``t, x, y, p`` (any order, any integer or bool dtypes; DVS-Lip stores
``t`` int32 and ``x, y, p`` int8). Polarity 1 is ON; 0 and -1 are OFF. Pickled object arrays
are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snn.datasets.io._common import (
    EventFormatError,
    PathLike,
    Recording,
    check_coordinates,
    check_event_file,
    check_range_args,
    check_sensor_size,
    make_events,
    resolve_sensor_size,
    select_range,
)

FIELDS = ("t", "x", "y", "p")


def _check_npy_size(path: PathLike) -> None:
    """Refuse a ``.npy`` whose header promises more data than the file holds."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read(f)
            data_start = f.tell()
    except Exception as exc:  # corrupt magic or header dictionary
        raise EventFormatError(path, 0, f"not a readable .npy header: {exc}") from exc
    if dtype.hasobject:
        raise EventFormatError(path, 0, "array holds pickled Python objects; refusing to load")
    n = int(np.prod(shape, dtype=object))
    need = n * dtype.itemsize
    have = Path(path).stat().st_size - data_start
    if need != have:
        raise EventFormatError(
            path, data_start, f"header declares {need} data bytes, the file holds {have}"
        )


def _fields(path: PathLike, start: int | None, stop: int | None) -> dict[str, np.ndarray]:
    """Fields ``t, x, y, p`` of events ``[start, stop)``; a ``.npy`` is memory-mapped, so only
    that range is read."""
    check_event_file(path)
    if Path(path).suffix != ".npz":
        _check_npy_size(path)
    try:
        npy = Path(path).suffix != ".npz"
        data = np.load(path, allow_pickle=False, mmap_mode="r" if npy else None)
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError on corrupt files
        raise EventFormatError(path, None, f"not a readable .npy/.npz file: {exc}") from exc
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            missing = [f for f in FIELDS if f not in data.files]
            if missing:
                raise EventFormatError(path, None, f"missing arrays {missing} (need t, x, y, p)")
            return {f: np.asarray(data[f]).ravel()[start:stop] for f in FIELDS}
    names = data.dtype.names or ()
    missing = [f for f in FIELDS if f not in names]
    if missing:
        raise EventFormatError(path, None, f"structured array lacks fields {missing}: {names}")
    data = data.reshape(-1)[start:stop]
    return {f: np.array(data[f]) for f in FIELDS}


def read_numpy_events(
    path: PathLike,
    *,
    sensor_size: Any = None,
    start: int | None = None,
    stop: int | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
) -> Recording:
    """Read events from a ``.npy`` structured array or a ``.npz`` of ``t, x, y, p`` arrays.

    A ``.npy`` is memory-mapped and only the events ``[start, stop)`` are read from it (a
    ``.npz`` member is read whole); the sensor size, when not given, is the smallest that holds
    the events of that range.

    Raises:
        EventFormatError: unreadable file, missing fields, fields of different lengths,
            non-integer values, polarity other than 1/0/-1, coordinates outside
            ``sensor_size``.
    """
    check_range_args(start, stop, t_start, t_end)
    f = _fields(path, start, stop)
    lengths = {k: v.size for k, v in f.items()}
    if len(set(lengths.values())) != 1:
        raise EventFormatError(path, None, f"fields have different lengths {lengths}")
    for k, v in f.items():
        if v.dtype.kind not in "iub":
            raise EventFormatError(path, None, f"field {k!r} has non-integer dtype {v.dtype}")
    p = f["p"].astype(np.int64)
    bad = (p != 1) & (p != 0) & (p != -1)
    if bad.any():
        i = int(np.argmax(bad))
        raise EventFormatError(path, None, f"polarity of event {i} is {p[i]}, not 1, 0 or -1")
    x, y = f["x"].astype(np.int64), f["y"].astype(np.int64)
    if x.size and (x.min() < 0 or y.min() < 0 or max(x.max(), y.max()) > 32767):
        raise EventFormatError(path, None, "coordinates outside 0..32767")
    events = make_events(x, y, f["t"], p == 1)
    header: dict[str, Any] = {}
    if sensor_size is not None:
        check_coordinates(events, check_sensor_size(sensor_size), path)
    sensor = resolve_sensor_size(sensor_size, None, events, header, path)
    return Recording(select_range(events, None, None, t_start, t_end), sensor, header)
