"""Download of dataset archives: resume, MD5 check, mirrors, progress, no partial files.

:func:`download_file` fetches one archive with the standard library only (:mod:`urllib`):

- bytes go to ``NAME.part`` beside the target; the target name appears only once the whole
  file is there and its MD5 equals the published one (:func:`os.replace`, atomic);
- an interrupted transfer (connection reset, short body, timeout) resumes where it stopped
  with an HTTP ``Range`` request, up to ``attempts`` times per mirror; a ``.part`` left by an
  earlier run is resumed too;
- a mirror answering 403, 404 or 410, timing out or refusing before any byte arrives, failing
  ``attempts`` times, or serving a file whose MD5 differs, is given up for the next one; every
  failure is kept for the final error;
- ``progress(done, total)`` is called as bytes arrive (``total`` is ``None`` when the server
  does not say).

Every loop is bounded: ``attempts`` tries per mirror, each read bounded by ``timeout``.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from http.client import HTTPException
from pathlib import Path

from snn.datasets.archive import md5sum

__all__ = ["DownloadError", "ProgressBar", "download_file"]

Progress = Callable[[int, "int | None"], None]

#: HTTP statuses that mean "this mirror does not have the file": go to the next one at once.
_GONE = {401, 403, 404, 410, 451}


class DownloadError(ConnectionError):
    """No mirror delivered the archive; the message lists each mirror and why it failed."""


class ProgressBar:
    """A progress line on ``stream`` (stderr by default), redrawn at most every ``interval`` s.

    Args:
        label: Shown before the numbers (usually the file name).
        interval: Minimum seconds between redraws.
        stream: Where to write; ``None`` means :data:`sys.stderr`.
    """

    def __init__(self, label: str, interval: float = 0.5, stream=None) -> None:
        self.label = label
        self.interval = interval
        self.stream = stream
        self._last = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self._last < self.interval:
            return
        self._last = now
        mb = done / 1e6
        text = (
            f"{self.label}: {mb:.1f} / {total / 1e6:.1f} MB ({100 * done / total:.0f}%)"
            if total
            else f"{self.label}: {mb:.1f} MB"
        )
        stream = self.stream if self.stream is not None else sys.stderr
        stream.write("\r" + text + ("\n" if finished else ""))
        stream.flush()


def _check_url(url: str) -> None:
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"download: only http(s) URLs are fetched, got {url!r}")


class _MirrorGone(Exception):
    """The mirror answered that it does not have the file (or will not serve it)."""


def _fetch_once(
    url: str, part: Path, timeout: float, chunk: int, progress: Progress | None
) -> bool:
    """Append the rest of ``url`` to ``part``. True when the server says the file is complete."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "snn-datasets", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # http(s) only
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and offset:  # the range starts at the end: nothing left to fetch
            return True
        if e.code in _GONE:
            raise _MirrorGone(f"HTTP {e.code} {e.reason}") from None
        raise
    with response:
        if offset and response.status != 206:  # the server ignored the range: start over
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as f:
            done = offset
            if progress is not None:
                progress(done, total)
            while block := response.read(chunk):
                f.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
            f.flush()
            os.fsync(f.fileno())
    return total is None or done >= total


def download_file(
    urls: Sequence[str],
    dest: str | os.PathLike[str],
    md5: str | None = None,
    *,
    timeout: float = 30.0,
    attempts: int = 5,
    chunk: int = 1 << 20,
    progress: Progress | None = None,
) -> Path:
    """Fetch ``dest`` from the first of ``urls`` that delivers it whole and with MD5 ``md5``.

    Args:
        urls: Mirrors, tried in order (http or https).
        dest: Final path of the archive. Nothing is written under this name until the file is
            complete and verified; the bytes go to ``dest`` + ``.part`` meanwhile.
        md5: Published hex MD5, or ``None`` to skip the check (where none is published).
        timeout: Seconds to wait for a connection or for the next bytes.
        attempts: Tries per mirror (the first plus resumes after interruptions).
        chunk: Bytes read at a time (memory use is bounded by this).
        progress: ``progress(done_bytes, total_bytes_or_None)`` as bytes arrive.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        DownloadError: no mirror delivered the file; the message lists each mirror's failure.
        ValueError: ``urls`` is empty, holds a non-http(s) URL, or ``attempts < 1``.
    """
    dest = Path(dest)
    if not urls:
        raise ValueError(f"download: no URL to fetch {dest.name} from")
    if attempts < 1:
        raise ValueError(f"download: attempts must be >= 1, got {attempts}")
    for url in urls:
        _check_url(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures: list[str] = []
    for url in urls:
        reason = ""
        for _ in range(attempts):
            before = part.stat().st_size if part.exists() else 0
            try:
                complete = _fetch_once(url, part, timeout, chunk, progress)
            except _MirrorGone as e:
                reason = str(e)
                break
            except (urllib.error.URLError, HTTPException, OSError) as e:  # incl. timeouts
                reason = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
                if (part.stat().st_size if part.exists() else 0) <= before:
                    break  # nothing arrived: the host is down or silent, try the next mirror
                continue  # interrupted after some bytes: resume from where it stopped
            if not complete:
                reason = "the connection closed before the end of the file"
                continue
            if md5 is not None:
                got = md5sum(part)
                if got != md5.lower():
                    part.unlink()
                    reason = f"MD5 of the downloaded file is {got}, expected {md5}"
                    break
            os.replace(part, dest)
            return dest
        failures.append(f"  - {url}: {reason}")
    kept = f" ({part.stat().st_size} bytes kept in {part} to resume)" if part.exists() else ""
    raise DownloadError(f"could not download {dest.name}{kept}; tried:\n" + "\n".join(failures))
