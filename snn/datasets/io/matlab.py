"""MATLAB ``.mat`` event files (level 5 read by ``snn.datasets.io._mat5``, v7.3 by h5py).

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

Memory is bounded by the work asked for: only the headers of the variables are read to find the
layout, then only the variables it needs are decoded, each after its declared size has been
checked against the bytes that hold it and against ``max_events``; a truncated file or one that
declares more than it holds raises one :class:`EventFormatError` naming the file, without an
allocation of the declared size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

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
from snn.datasets.io._mat5 import MX_STRUCT, ZLIB_MAX_RATIO, Mat5

LAYOUTS = ("auto", "columns", "matrix", "struct")
COLUMN_VARIABLES = {"x": "x", "y": "y", "t": "ts", "p": "pol"}
STRUCT_FIELDS = ("x", "y", "ts", "p")


def _find_struct(data: _Variables, variable: str) -> str | None:
    """Name of the struct holding ``x, y, ts, p`` (``variable`` first, then any other); only
    the variables' headers are read."""
    names = [variable, *sorted(k for k in data.names if k != variable)]
    for name in names:
        if name in data and data.is_struct(name) and all(
            f in data.fields(name) for f in STRUCT_FIELDS
        ):
            return name
    return None


class _Variables(ABC):
    """The variables of a MAT file, decoded only when asked for (``name in vars``,
    ``vars.get(name)``, ``vars.names``, ``vars.is_struct(name)``, ``vars.fields(name)``)."""

    def __init__(self, path: PathLike, max_events: int | None):
        self.path, self.max_events = path, max_events
        self.cache: dict[str, Any] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def get(self, name: str) -> Any:
        """The decoded variable ``name`` (decoded once)."""
        if name not in self.cache:
            self.cache[name] = self._decode(name)
        return self.cache[name]

    @abstractmethod
    def _decode(self, name: str) -> Any:
        """The variable ``name`` read from the file (each file format its own way)."""


class _V5(_Variables):
    def __init__(self, path: PathLike, f: BinaryIO, max_events: int | None):
        super().__init__(path, max_events)
        self.mat = Mat5(path, f, max_values=None if max_events is None else 4 * max_events)
        self.names = list(self.mat.variables)

    def is_struct(self, name: str) -> bool:
        return self.mat.variables[name].cls == MX_STRUCT

    def fields(self, name: str) -> tuple[str, ...]:
        return self.mat.variables[name].fields

    def _decode(self, name: str) -> Any:
        return self.mat.read(name)


class _V73(_Variables):
    """MATLAB 7.3 (HDF5): datasets are read only when asked for, after their declared size is
    checked against the bytes the file stores for them and the caller's limit."""

    def __init__(self, path: PathLike, h5: Any, max_events: int | None):
        super().__init__(path, max_events)
        import h5py

        self.h5py, self.h5 = h5py, h5
        self.names = [k for k, v in h5.items() if isinstance(v, (h5py.Dataset, h5py.Group))]

    def is_struct(self, name: str) -> bool:
        return isinstance(self.h5[name], self.h5py.Group)

    def fields(self, name: str) -> tuple[str, ...]:
        group = self.h5[name]
        return tuple(k for k, v in group.items() if isinstance(v, self.h5py.Dataset))

    def _dataset(self, ds: Any, label: str) -> np.ndarray:
        count = int(np.prod(ds.shape, dtype=np.int64))
        if self.max_events is not None and count > 4 * self.max_events:
            raise EventFormatError(self.path, None, f"{label!r} declares {count} values, more "
                                   f"than the limit of max_events={self.max_events}")
        declared = count * ds.dtype.itemsize
        stored = ds.id.get_storage_size()
        if declared > ZLIB_MAX_RATIO * stored + 4096:
            raise EventFormatError(self.path, None, f"{label!r} declares {declared} bytes of "
                                   f"data but the file stores only {stored} for it")
        try:
            return np.asarray(ds[()]).T  # v7.3 stores arrays transposed (column-major)
        except (OSError, ValueError) as exc:
            raise EventFormatError(self.path, None, f"cannot read {label!r}: {exc}") from exc

    def _decode(self, name: str) -> Any:
        v = self.h5[name]
        if isinstance(v, self.h5py.Group):  # a struct: one dataset per field
            return {f: self._dataset(v[f], f"{name}.{f}") for f in self.fields(name)}
        return self._dataset(v, name)


@contextmanager
def _open(path: PathLike, max_events: int | None) -> Iterator[_Variables]:
    check_event_file(path)
    with open(path, "rb") as f:
        head = f.read(128)
        if head[:8] == b"\x89HDF\r\n\x1a\n" or b"MATLAB 7.3" in head:
            import h5py

            try:
                h5 = h5py.File(path, "r")
            except OSError as exc:
                raise EventFormatError(path, 0, f"not a readable MATLAB 7.3 file: {exc}") from exc
            with h5:
                yield _V73(path, h5, max_events)
            return
        yield _V5(path, f, max_events)


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
        if v.size and np.abs(v).max() >= 2.0**63:
            raise EventFormatError(path, None, f"field {name!r} holds values beyond 64 bits")
    elif v.dtype.kind == "u" and v.size and v.max() >= 2**63:
        raise EventFormatError(path, None, f"field {name!r} holds values beyond 64 bits")
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
    max_events: int | None = None,
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
        max_events: Refuse a file whose event variables declare more events than this, before
            reading them (default: no limit beyond what the file can hold).

    Raises:
        EventFormatError: unreadable, truncated or inconsistent file (a declared size larger
            than what holds it), missing variables, wrong shapes, bad polarity, non-integer
            coordinates, coordinates outside ``sensor_size``, more than ``max_events`` events.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if sorted(columns) != ["p", "t", "x", "y"]:
        raise ValueError(f"columns must be a permutation of x, y, p, t, got {columns!r}")
    check_range_args(start, stop, t_start, t_end)
    if max_events is not None and (isinstance(max_events, bool) or not isinstance(
            max_events, int) or max_events < 0):
        raise ValueError(f"max_events must be a non-negative integer, got {max_events!r}")
    with _open(path, max_events) as data:
        return _read(path, data, layout, variable, columns, sensor_size, start, stop, t_start,
                     t_end, max_events)


def _array(data: _Variables, name: str, path: PathLike) -> np.ndarray:
    value = data.get(name)
    if not isinstance(value, np.ndarray):
        raise EventFormatError(path, None, f"variable {name!r} is not a numeric array")
    return value


def _read(path: PathLike, data: _Variables, layout: str, variable: str,
          columns: tuple[str, str, str, str], sensor_size: Any, start: int | None,
          stop: int | None, t_start: float | None, t_end: float | None,
          max_events: int | None) -> Recording:
    struct = _find_struct(data, variable) if layout in ("auto", "struct") else None
    if layout == "auto":
        if variable in data and not data.is_struct(variable):
            layout = "matrix"
        else:
            layout = "struct" if struct is not None else "columns"
    one_based = layout == "struct"
    if layout == "struct":
        if struct is None:
            raise EventFormatError(
                path, None, f"no struct with fields {list(STRUCT_FIELDS)} in the file"
            )
        raw = data.get(struct)
        if not isinstance(raw, dict) or not all(
            isinstance(raw.get(v), np.ndarray) for v in STRUCT_FIELDS
        ):
            raise EventFormatError(path, None, f"struct {struct!r} is not one record of numeric "
                                   f"fields {list(STRUCT_FIELDS)}")
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
        m = _array(data, variable, path)
        if m.ndim != 2 or m.shape[1] != 4:
            raise EventFormatError(path, None, f"{variable!r} has shape {m.shape}, expected N x 4")
        fields = {name: m[:, i] for i, name in enumerate(columns)}
    else:
        missing = [v for v in COLUMN_VARIABLES.values() if v not in data]
        if missing:
            raise EventFormatError(path, None, f"missing variables {missing} (need x, y, ts, pol)")
        fields = {k: _array(data, v, path).ravel() for k, v in COLUMN_VARIABLES.items()}
        lengths = {k: v.size for k, v in fields.items()}
        if len(set(lengths.values())) != 1:
            raise EventFormatError(path, None, f"variables have different lengths {lengths}")
    if max_events is not None and fields["x"].size > max_events:
        raise EventFormatError(path, None, f"{fields['x'].size} events, more than the limit of "
                               f"max_events={max_events}")
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
