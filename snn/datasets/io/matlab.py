"""MATLAB ``.mat`` event files (v5 through scipy, v7.3 through h5py).

Two layouts are read:

- ``"columns"``: separate vectors ``x``, ``y``, ``ts``, ``pol`` (ASL-DVS);
- ``"matrix"``: one N x 4 numeric matrix (default variable ``events``) whose columns are named
  by ``columns`` (default ``("x", "y", "p", "t")``, the layout of the DVS128 ``building``
  recording).

Polarity values 1 mean ON; 0 and -1 mean OFF; anything else is an error. ``t`` is in
microseconds.
"""

from __future__ import annotations

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

LAYOUTS = ("auto", "columns", "matrix")
COLUMN_VARIABLES = {"x": "x", "y": "y", "t": "ts", "p": "pol"}


def _load(path: PathLike) -> dict[str, np.ndarray]:
    check_event_file(path)
    with open(path, "rb") as f:
        head = f.read(128)
    if head[:8] == b"\x89HDF\r\n\x1a\n" or b"MATLAB 7.3" in head:
        import h5py

        try:
            with h5py.File(path, "r") as h5:
                # v7.3 stores arrays transposed (MATLAB is column-major).
                return {k: np.asarray(v).T for k, v in h5.items() if isinstance(v, h5py.Dataset)}
        except OSError as exc:
            raise EventFormatError(path, 0, f"not a readable MATLAB 7.3 file: {exc}") from exc
    import scipy.io

    try:
        return scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises ValueError/TypeError/struct.error on corrupt input
        raise EventFormatError(path, None, f"not a readable MATLAB file: {exc}") from exc


def _polarity(p: np.ndarray, path: PathLike) -> np.ndarray:
    p = np.asarray(p).ravel()
    bad = (p != 1) & (p != 0) & (p != -1)
    if bad.any():
        i = int(np.argmax(bad))
        raise EventFormatError(path, None, f"polarity of event {i} is {p[i]!r}, not 1, 0 or -1")
    return p == 1


def _integral(v: np.ndarray, name: str, path: PathLike) -> np.ndarray:
    v = np.asarray(v).ravel()
    if v.dtype.kind == "f":
        if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
            raise EventFormatError(path, None, f"field {name!r} holds non-integer values")
    elif v.dtype.kind not in "iub":
        raise EventFormatError(path, None, f"field {name!r} has non-numeric dtype {v.dtype}")
    return v.astype(np.int64)


def read_mat(
    path: PathLike,
    *,
    layout: str = "auto",
    variable: str = "events",
    columns: tuple[str, str, str, str] = ("x", "y", "p", "t"),
    sensor_size: Any = None,
    start: int | None = None,
    stop: int | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
) -> Recording:
    """Read events from a MATLAB file.

    Args:
        path: File to read.
        layout: ``"columns"``, ``"matrix"`` or ``"auto"`` (``matrix`` when ``variable`` exists,
            else ``columns``).
        variable: Matrix variable name for the ``"matrix"`` layout.
        columns: Meaning of the matrix columns, a permutation of ``x, y, p, t``.
        sensor_size: ``(W, H, P)``; otherwise the smallest size holding the events.
        start: First event index; ``stop``: one past the last.
        t_start: Keep ``t >= t_start``; ``t_end``: keep ``t < t_end`` (microseconds).

    Raises:
        EventFormatError: unreadable file, missing variables, wrong shapes, bad polarity,
            non-integer coordinates, coordinates outside ``sensor_size``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if sorted(columns) != ["p", "t", "x", "y"]:
        raise ValueError(f"columns must be a permutation of x, y, p, t, got {columns!r}")
    check_range_args(start, stop, t_start, t_end)
    data = _load(path)
    if layout == "auto":
        layout = "matrix" if variable in data else "columns"
    if layout == "matrix":
        if variable not in data:
            raise EventFormatError(path, None, f"no variable {variable!r} in the file")
        m = np.asarray(data[variable])
        if m.ndim != 2 or m.shape[1] != 4:
            raise EventFormatError(path, None, f"{variable!r} has shape {m.shape}, expected N x 4")
        fields = {name: m[:, i] for i, name in enumerate(columns)}
    else:
        missing = [v for v in COLUMN_VARIABLES.values() if v not in data]
        if missing:
            raise EventFormatError(path, None, f"missing variables {missing} (need x, y, ts, pol)")
        fields = {k: np.asarray(data[v]).ravel() for k, v in COLUMN_VARIABLES.items()}
        lengths = {k: v.size for k, v in fields.items()}
        if len(set(lengths.values())) != 1:
            raise EventFormatError(path, None, f"variables have different lengths {lengths}")
    x = _integral(fields["x"], "x", path)
    y = _integral(fields["y"], "y", path)
    t = _integral(fields["t"], "t", path)
    p = _polarity(fields["p"], path)
    if x.size and (x.min() < 0 or y.min() < 0 or x.max() > 32767 or y.max() > 32767):
        raise EventFormatError(path, None, "coordinates outside 0..32767")
    events = make_events(x, y, t, p)
    header: dict[str, Any] = {"layout": layout}
    if sensor_size is not None:
        check_coordinates(events, check_sensor_size(sensor_size), path)
    sensor = resolve_sensor_size(sensor_size, None, events, header, path)
    return Recording(select_range(events, start, stop, t_start, t_end), sensor, header)
