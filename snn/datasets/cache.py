"""Disk cache of transformed samples, keyed by the dataset and the transform's parameters.

:class:`CachedDataset` wraps a dataset whose items are ``(data, target)``. The first access
to an index computes the item and writes ``data`` (a numpy array or torch tensor) and the
target to ``cache_dir/<key>/<index>.npz``, where ``key`` hashes the dataset's identity and a
canonical description of the transform (:func:`transform_key`). Files are written to a
temporary name and moved into place with ``os.replace``, so a reader, another DataLoader
worker or an interrupted run never sees a partial entry; two workers computing the same entry
write the same bytes and the last rename wins.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
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


def atomic_save(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` as an ``.npz`` to ``path`` through a temporary file and ``os.replace``."""
    with atomic_open(path, fsync=False) as f:  # a cache entry can be rebuilt
        np.savez(f, **arrays)


class CachedDataset(torch.utils.data.Dataset):
    """Cache ``transform(dataset[i][0])`` on disk.

    Args:
        dataset: Dataset of ``(data, target)``; give it no transform of its own, the cache
            applies ``transform``.
        cache_dir: Folder for cache entries.
        transform: Deterministic transform whose output is cached (numpy array or tensor).
        key: Explicit cache key (default: derived from the dataset and ``transform``).

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

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def path(self, index: int) -> Path:
        """Cache file of sample ``index``."""
        return self.dir / f"{index}.npz"

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if index < 0:
            index += len(self)
        path = self.path(index)
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                data, target, as_tensor = z["data"], z["target"], bool(z["tensor"])
            return (torch.from_numpy(data) if as_tensor else data), _plain(target)
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
