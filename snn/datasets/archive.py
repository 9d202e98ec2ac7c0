"""Checksums and safe, all-or-nothing extraction of dataset archives.

:func:`safe_extract` unpacks a ``.zip``, ``.tar``, ``.tar.gz``/``.tgz`` or ``.tar.bz2`` archive
into a private temporary folder next to the destination, refusing members that would land
outside it (absolute paths, ``..``, links, devices), and only then moves the top-level entries
into place with ``os.replace``. A failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from snn.datasets.io._common import PathLike


class ChecksumError(ValueError):
    """An archive's MD5 differs from the published one."""


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the destination, or is a link/device."""


def md5sum(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_md5(path: PathLike, expected: str) -> None:
    """Raise :class:`ChecksumError` naming the file when its MD5 is not ``expected``."""
    got = md5sum(path)
    if got != expected.lower():
        raise ChecksumError(
            f"{path}: MD5 is {got}, expected {expected}; the file is incomplete or not the "
            "published archive (delete it and download it again)"
        )


def _check_member_name(archive: Path, name: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise UnsafeArchiveError(f"{archive}: member {name!r} would extract outside the target")
    return p


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _check_member_name(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a symbolic link")
        zf.extractall(dest)


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for m in members:
            _check_member_name(archive, m.name)
            if not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(
                    f"{archive}: member {m.name!r} is a link or special file; refusing to extract"
                )
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tf.extractall(dest, members=members)


def safe_extract(archive: PathLike, dest: PathLike) -> list[Path]:
    """Extract ``archive`` into ``dest`` atomically per top-level entry.

    Returns:
        The top-level paths created in ``dest``.

    Raises:
        UnsafeArchiveError: a member escapes ``dest`` or is a link/device.
        ValueError: unknown archive type, or a top-level entry already exists in ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    if name.endswith(".zip"):
        extract = _extract_zip
    elif name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        extract = _extract_tar
    else:
        raise ValueError(f"{archive}: unknown archive type (expected .zip or .tar[.gz|.bz2|.xz])")
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        extract(archive, tmp)
        entries = sorted(tmp.iterdir())
        clashes = [e.name for e in entries if (dest / e.name).exists()]
        if clashes:
            raise ValueError(f"{archive}: {clashes} already exist in {dest}; remove them first")
        created = []
        for e in entries:
            os.replace(e, dest / e.name)
            created.append(dest / e.name)
        return created
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
