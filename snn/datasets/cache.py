"""Disk cache of transformed samples, keyed by the dataset and the transform's parameters.

:class:`CachedDataset` wraps a dataset whose items are ``(data, target)``. The first access
to an index computes the item and writes ``data`` (a numpy array or torch tensor) and the
target to ``cache_dir/<key>/<index>.npz``, where ``key`` hashes the dataset's identity and a
canonical description of the transform (:func:`transform_key`). Files are written to a
temporary name and moved into place with ``os.replace``, so a reader, another DataLoader
worker or an interrupted run never sees a partial entry; two workers computing the same entry
write the same bytes and the last rename wins.

A writer killed mid-write (SIGKILL, out of memory, power loss) leaves its temporary file behind.
Each writer holds an advisory lock (``flock``) on its temporary while it writes; a process holds
no lock once it is dead, so temporaries nobody holds are removed when a cache is opened
(:func:`remove_abandoned_temporaries`). An entry that cannot be read back (truncated, bit
flips caught by the zip CRC, foreign bytes) is named in a :class:`CacheWarning`, removed and
computed again (:func:`read_entry`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils.data

from snn._files import atomic_open
from snn.datasets.io._common import PathLike


def _describe(obj: Any) -> Any:
    """JSON-able canonical description of a transform and its parameters."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, list | tuple):
        return [_describe(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _describe(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return {"ndarray": obj.dtype.str, "shape": obj.shape, "data": obj.ravel().tolist()}
    if isinstance(obj, np.dtype):
        return obj.str
    cls = type(obj)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: _describe(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return {name: fields}
    if isinstance(obj, functools.partial):
        return {
            "partial": _describe(obj.func),
            "args": _describe(obj.args),
            "kwargs": _describe(obj.keywords),
        }
    qualname = getattr(obj, "__qualname__", "")
    if callable(obj) and qualname and "<lambda>" not in qualname and "<locals>" not in qualname:
        return f"{obj.__module__}.{qualname}"
    if hasattr(obj, "transforms") and isinstance(obj.transforms, list | tuple):
        return {name: _describe(list(obj.transforms))}
    raise TypeError(
        f"cannot derive a cache key from {obj!r}: use dataclass transforms, module-level "
        "functions or functools.partial, or pass key= explicitly"
    )


def transform_key(transform: Any) -> str:
    """Hex SHA-256 of the canonical description of ``transform``."""
    text = json.dumps(_describe(transform), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; abandoned temporaries go by age
    fcntl = None  # type: ignore[assignment]

#: Without ``flock`` (Windows), a temporary older than this (seconds) counts as abandoned.
ABANDONED_AGE = 24 * 3600.0


class CacheWarning(UserWarning):
    """A cache entry could not be read back; it is removed and computed again."""


def atomic_save(path: Path, **arrays: np.ndarray) -> bool:
    """Write ``arrays`` as an ``.npz`` to ``path`` through a temporary file and ``os.replace``.

    The temporary is locked (``flock``) while it is written, so that
    :func:`remove_abandoned_temporaries` in another process leaves it alone.

    Returns:
        ``False`` when the temporary disappeared before the rename (taken for abandoned in
        the instant between its creation and its lock); the entry is then simply not cached.
    """
    try:
        with atomic_open(path, fsync=False) as f:  # a cache entry can be rebuilt
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            np.savez(f, **arrays)
    except FileNotFoundError:
        if not Path(path).parent.is_dir():
            raise
        return False
    return True


def _abandoned(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # already gone, or not ours to read
        return False
    try:
        if fcntl is None:  # pragma: no cover - Windows
            return time.time() - os.fstat(fd).st_mtime > ABANDONED_AGE
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live writer holds it
            return False
        return True
    finally:
        os.close(fd)


def remove_abandoned_temporaries(folder: PathLike, pattern: str = ".*.tmp") -> list[Path]:
    """Remove the temporaries of writers that died mid-write from ``folder``.

    Args:
        folder: Cache folder (nothing happens when it does not exist).
        pattern: Glob of temporary names (:func:`snn._files.atomic_open` writes
            ``.<name>.<random>.tmp``).

    Returns:
        The removed files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for tmp in sorted(folder.glob(pattern)):
        if tmp.is_file() and _abandoned(tmp):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def read_entry(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays ``keys`` of the cache entry ``path``; ``None`` when it is missing.

    An entry that cannot be read (not a zip, truncated, a CRC mismatch, a missing array) is
    named in a :class:`CacheWarning` and removed, and ``None`` is returned, so the caller
    computes it again.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in keys}
    except FileNotFoundError:
        return None
    except (zipfile.BadZipFile, ValueError, KeyError, EOFError, OSError) as exc:
        warnings.warn(
            f"cache entry {path} is corrupted ({type(exc).__name__}: {exc}); "
            "removing it and computing it again",
            CacheWarning,
            stacklevel=3,
        )
        Path(path).unlink(missing_ok=True)
        return None


class CachedDataset(torch.utils.data.Dataset):
    """Cache ``transform(dataset[i][0])`` on disk.

    Args:
        dataset: Dataset of ``(data, target)``; give it no transform of its own, the cache
            applies ``transform``.
        cache_dir: Folder for cache entries.
        transform: Deterministic transform whose output is cached (numpy array or tensor).
        key: Explicit cache key (default: derived from the dataset and ``transform``).

    Temporaries left in the cache folder by writers that died mid-write are removed when the
    cache is created; an unreadable entry is named in a :class:`CacheWarning` and recomputed.

    Raises:
        TypeError: no key can be derived from ``transform``, or it returns another type.
    """

    def __init__(
        self,
        dataset: torch.utils.data.Dataset,
        cache_dir: PathLike,
        transform: Callable[[Any], Any] | None = None,
        key: str | None = None,
    ) -> None:
        self.dataset = dataset
        self.transform = transform
        if key is None:
            identity = getattr(dataset, "cache_identity", None)
            ident = identity() if callable(identity) else f"{type(dataset).__qualname__}"
            key = hashlib.sha256(f"{ident}|{transform_key(transform)}".encode()).hexdigest()[:24]
        self.key = key
        self.dir = Path(cache_dir) / key
        self.removed_temporaries = remove_abandoned_temporaries(self.dir, ".*.npz.*.tmp")

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def path(self, index: int) -> Path:
        """Cache file of sample ``index``."""
        return self.dir / f"{index}.npz"

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if index < 0:
            index += len(self)
        path = self.path(index)
        entry = read_entry(path, ("data", "target", "tensor")) if path.is_file() else None
        if entry is not None:
            data, target = entry["data"], entry["target"]
            return (torch.from_numpy(data) if bool(entry["tensor"]) else data), _plain(target)
        data, target = self.dataset[index]
        if self.transform is not None:
            data = self.transform(data)
        if isinstance(data, torch.Tensor):
            array, as_tensor = data.detach().cpu().numpy(), True
        elif isinstance(data, np.ndarray):
            array, as_tensor = data, False
        else:
            raise TypeError(
                f"the cache stores numpy arrays or tensors; the transform gave {type(data)}"
            )
        try:
            target_array = np.asarray(target)
        except Exception as exc:
            raise TypeError(f"the cache stores array-like targets, got {type(target)}") from exc
        if target_array.dtype == object:
            raise TypeError(f"the cache stores array-like targets, got {type(target)}")
        atomic_save(path, data=array, target=target_array, tensor=np.asarray(as_tensor))
        return data, target


def _plain(target: np.ndarray) -> Any:
    return target.item() if target.ndim == 0 else target
