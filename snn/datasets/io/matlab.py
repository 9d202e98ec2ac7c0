"""MATLAB ``.mat`` event files (v5 through scipy, v7.3 through h5py).

Three layouts are read:

- ``"columns"``: separate vectors ``x``, ``y``, ``ts``, ``pol`` (ASL-DVS);
- ``"matrix"``: one N x 4 numeric matrix (default variable ``events``) whose columns are named
  by ``columns`` (default ``("x", "y", "p", "t")``, the layout of the DVS128 ``building``
  recording);
- ``"struct"``: a struct with fields ``x``, ``y``, ``ts``, ``p`` as written by the MATLAB AER
  functions of Orchard et al. (``Read_Ndataset.m`` of N-MNIST / N-Caltech101; Orchard, Jayawant,
  Cohen & Thakor, Front. Neurosci. 2015): coordinates are 1-based (the first pixel is 1) and
  polarity is 1 for OFF and 2 for ON. Coordinates become 0-based here.

In the other layouts polarity values 1 mean ON; 0 and -1 mean OFF; anything else is an error.
``t`` is in microseconds.
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

LAYOUTS = ("auto", "columns", "matrix", "struct")
COLUMN_VARIABLES = {"x": "x", "y": "y", "t": "ts", "p": "pol"}
STRUCT_FIELDS = ("x", "y", "ts", "p")


def _struct_fields(value: Any) -> dict[str, np.ndarray] | None:
    """Fields of a MATLAB struct (scipy record array or h5py group dict), else ``None``."""
    if isinstance(value, dict):
        return value
    if isinstance(value, np.ndarray) and value.dtype.names and value.size == 1:
        item = value.reshape(-1)[0]
        return {name: np.asarray(item[name]) for name in value.dtype.names}
    return None


def _find_struct(data: dict[str, Any], variable: str) -> str | None:
    """Name of the struct holding ``x, y, ts, p`` (``variable`` first, then any other)."""
    names = [variable, *sorted(k for k in data if k != variable and not k.startswith("__"))]
    for name in names:
        fields = _struct_fields(data.get(name))
        if fields is not None and all(f in fields for f in STRUCT_FIELDS):
            return name
    return None


def _load(path: PathLike) -> dict[str, Any]:
    check_event_file(path)
    with open(path, "rb") as f:
        head = f.read(128)
    if head[:8] == b"\x89HDF\r\n\x1a\n" or b"MATLAB 7.3" in head:
        import h5py

        try:
            with h5py.File(path, "r") as h5:
                # v7.3 stores arrays transposed (MATLAB is column-major).
                out: dict[str, Any] = {}
                for k, v in h5.items():
                    if isinstance(v, h5py.Dataset):
                        out[k] = np.asarray(v).T
                    elif isinstance(v, h5py.Group):  # a struct: one dataset per field
                        out[k] = {
                            f: np.asarray(d).T for f, d in v.items() if isinstance(d, h5py.Dataset)
                        }
                return out
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
        layout: ``"columns"``, ``"matrix"``, ``"struct"`` or ``"auto"`` (``matrix`` when
            ``variable`` is a numeric matrix, ``struct`` when a struct with fields ``x, y, ts,
            p`` exists, else ``columns``).
        variable: Matrix variable name for the ``"matrix"`` layout; the struct's name for
            ``"struct"`` (default: the first struct with those fields, e.g. ``TD``).
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
    struct = _find_struct(data, variable) if layout in ("auto", "struct") else None
    if layout == "auto":
        if variable in data and _struct_fields(data[variable]) is None:
            layout = "matrix"
        else:
            layout = "struct" if struct is not None else "columns"
    one_based = layout == "struct"
    if layout == "struct":
        if struct is None:
            raise EventFormatError(
                path, None, f"no struct with fields {list(STRUCT_FIELDS)} in the file"
            )
        raw = _struct_fields(data[struct])
        fields = {k: np.asarray(raw[v]).ravel() for k, v in zip("xytp", STRUCT_FIELDS)}
        lengths = {k: v.size for k, v in fields.items()}
        if len(set(lengths.values())) != 1:
            raise EventFormatError(path, None, f"fields of {struct!r} differ in length {lengths}")
        p = _integral(fields["p"], "p", path)
        bad = (p != 1) & (p != 2)
        if bad.any():
            i = int(np.argmax(bad))
            raise EventFormatError(
                path, None, f"{struct}.p of event {i} is {p[i]}, expected 1 (OFF) or 2 (ON)"
            )
        fields["p"] = (p == 2).astype(np.int64)
    elif layout == "matrix":
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
    if one_based:
        if x.size and (x.min() < 1 or y.min() < 1):
            raise EventFormatError(path, None, "struct coordinates are 1-based: found a value < 1")
        x, y = x - 1, y - 1
    t = _integral(fields["t"], "t", path)
    p = _polarity(fields["p"], path)
    if x.size and (x.min() < 0 or y.min() < 0 or x.max() > 32767 or y.max() > 32767):
        raise EventFormatError(path, None, "coordinates outside 0..32767")
    events = make_events(x, y, t, p)
    header: dict[str, Any] = {"layout": layout}
    if struct is not None and layout == "struct":
        header["variable"] = struct
    if sensor_size is not None:
        check_coordinates(events, check_sensor_size(sensor_size), path)
    sensor = resolve_sensor_size(sensor_size, None, events, header, path)
    return Recording(select_range(events, start, stop, t_start, t_end), sensor, header)
