"""Base class of the event datasets: locating, verifying and extracting local files.

Each dataset lists its :class:`Resource` archives (file name, landing page, published MD5,
direct-download mirrors). For every resource a split needs, the dataset looks in ``root`` for
the extracted files; failing that for the archive, which it verifies and extracts safely;
failing that, with ``download=True``, it fetches the archive from its mirrors
(:func:`snn.datasets.download.download_file`: resumable, MD5-checked, never a partial file
under the archive's name); failing that it raises :class:`DatasetNotFoundError` saying which
files to get, from where, their checksums, and where to put them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch.utils.data

from snn.datasets.archive import safe_extract, verify_md5
from snn.datasets.io._common import PathLike


@dataclass(frozen=True)
class Resource:
    """One published archive.

    Attributes:
        filename: Archive name, placed in the dataset's ``root``.
        url: Where to get it by hand (the landing page, or a direct link).
        md5: Published MD5 (``None`` where none is published: extraction warns).
        marker: Path, relative to ``root``, that exists once the archive is extracted.
        mirrors: Direct-download URLs of this very file, tried in order by ``download=True``
            (empty where the file is only offered behind a web page).
    """

    filename: str
    url: str
    md5: str | None
    marker: str
    mirrors: tuple[str, ...] = ()


class DatasetNotFoundError(FileNotFoundError):
    """Dataset files are missing from ``root``; the message says what to get and where."""


class EventDataset(torch.utils.data.Dataset):
    """A dataset of event recordings with integer class targets.

    ``dataset[i]`` is ``(transform(events), target_transform(target))``; events are the
    structured arrays of :mod:`snn.datasets.io`.

    Args:
        root: Folder holding the archives or their extracted contents.
        split: One of the dataset's ``splits``.
        transform: Callable applied to the events (ours or tonic's).
        target_transform: Callable applied to the integer target.
        extract: Extract archives found in ``root`` when the extracted files are missing.
        download: Fetch missing archives from their mirrors (resumable, MD5-checked) before
            extracting them. Without it, or when no mirror answers, the error lists the files,
            URLs and checksums to fetch by hand.
        progress: Report download progress on stderr.
    """

    #: Short name, also the registry key.
    name: ClassVar[str] = ""
    #: ``(W, H, P)`` of every sample, or ``None`` when samples differ.
    sensor_size: ClassVar[tuple[int, int, int] | None] = None
    #: Class names, indexed by target.
    classes: ClassVar[tuple[str, ...]] = ()
    #: Split names; the first is the default.
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    #: Landing page of the dataset.
    homepage: ClassVar[str] = ""

    def __init__(
        self,
        root: PathLike,
        split: str | None = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        extract: bool = True,
        download: bool = False,
        progress: bool = True,
    ) -> None:
        split = self.splits[0] if split is None else split
        if split not in self.splits:
            raise ValueError(
                f"{type(self).__name__}: split must be one of {self.splits}, got {split!r}"
            )
        self.root = Path(root).expanduser()
        self.split = split
        self.transform = transform
        self.target_transform = target_transform
        self._download_failures: dict[str, str] = {}
        if download:
            self._download(progress)
        self._prepare(extract)
        self.samples, targets = self._index()
        self.targets = np.asarray(targets, dtype=np.int64)
        if len(self.samples) == 0:
            raise DatasetNotFoundError(
                f"{type(self).__name__}: no samples for split {self.split!r} under {self.root}"
            )

    # -- subclass API ----------------------------------------------------------------------

    def resources(self) -> list[Resource]:
        """Archives this split needs."""
        raise NotImplementedError

    def _index(self) -> tuple[list[Any], list[int]]:
        """Sample descriptors and their targets, in a fixed order."""
        raise NotImplementedError

    def _load(self, sample: Any) -> np.ndarray:
        """Events of one sample descriptor."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------

    def _download(self, progress: bool) -> None:
        """Fetch every archive that is neither extracted nor present and has mirrors."""
        from snn.datasets.download import DownloadError, ProgressBar, download_file

        for res in self.resources():
            archive = self.root / res.filename
            if (self.root / res.marker).exists() or archive.is_file() or not res.mirrors:
                continue
            try:
                download_file(
                    res.mirrors,
                    archive,
                    res.md5,
                    progress=ProgressBar(res.filename) if progress else None,
                )
            except DownloadError as e:
                self._download_failures[res.filename] = str(e)

    def _prepare(self, extract: bool) -> None:
        missing: list[Resource] = []
        for res in self.resources():
            if (self.root / res.marker).exists():
                continue
            archive = self.root / res.filename
            if not (extract and archive.is_file()):
                missing.append(res)
                continue
            if res.md5 is None:
                warnings.warn(
                    f"{archive}: no MD5 is published for this archive; extracting unverified",
                    stacklevel=3,
                )
            else:
                verify_md5(archive, res.md5)
            safe_extract(archive, self.root)
            if not (self.root / res.marker).exists():
                raise DatasetNotFoundError(
                    f"{archive} was extracted but {self.root / res.marker} is still missing; "
                    "is it the right archive?"
                )
        if missing:
            failures = getattr(self, "_download_failures", {})
            how = (
                "The download failed"
                if failures
                else "Nothing is downloaded unless download=True is passed"
            )
            lines = [
                f"{type(self).__name__} ({self.split}): files missing under {self.root}. "
                f"{how}; get these and place them there:"
            ]
            for res in missing:
                md5 = f", MD5 {res.md5}" if res.md5 else ""
                urls = ", ".join(dict.fromkeys((res.url, *res.mirrors)))
                lines.append(
                    f"  - {res.filename} from {urls}{md5} -> {self.root / res.filename} "
                    f"(or its extracted contents, so that {self.root / res.marker} exists)"
                )
            for name, failure in failures.items():
                lines.append(f"Download of {name}: {failure}")
            raise DatasetNotFoundError("\n".join(lines))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        events = self._load(self.samples[index])
        target: Any = int(self.targets[index])
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return events, target

    def cache_identity(self) -> str:
        """Stable description of which samples this dataset yields (for the disk cache)."""
        return f"{type(self).__name__}:{self.root.resolve()}:{self.split}:{len(self)}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
            f"samples={len(self)}, classes={len(self.classes)})"
        )
