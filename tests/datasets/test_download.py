"""Archive downloads against a local HTTP server on 127.0.0.1 (no test leaves the machine)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from fake_datasets import FAKES

from snn.datasets import DATASETS, get_dataset
from snn.datasets.base import DatasetNotFoundError
from snn.datasets.download import DownloadError, ProgressBar, download_file

DATA = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
MD5 = hashlib.md5(DATA, usedforsecurity=False).hexdigest()


class _Server:
    """Serves ``files[name]`` at ``/<behaviour>/<name>`` and records every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"data.bin": DATA}
        self.log: list[tuple[str, str | None]] = []
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                behaviour, _, name = self.path.strip("/").partition("/")
                rng = self.headers.get("Range")
                server.log.append((self.path, rng))
                hit = server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if behaviour in ("403", "404"):
                    self.send_error(int(behaviour))
                    return
                if behaviour == "slow":
                    time.sleep(1.0)
                data = server.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                if behaviour == "bad":
                    data = data[:-1] + bytes([data[-1] ^ 1])
                start = 0
                if rng and behaviour != "norange":
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if behaviour == "cut" and hit == 1:  # promise everything, send a third, hang up
                    self.wfile.write(body[: len(data) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, behaviour: str, name: str = "data.bin") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{behaviour}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def test_interrupted_transfer_resumes_with_a_range_request(server, tmp_path):
    seen = []
    out = download_file(
        [server.url("cut")], tmp_path / "a.zip", MD5, progress=lambda d, t: seen.append((d, t))
    )
    assert out.read_bytes() == DATA
    assert server.log == [("/cut/data.bin", None), ("/cut/data.bin", f"bytes={len(DATA) // 3}-")]
    assert not (tmp_path / "a.zip.part").exists()
    assert seen[-1] == (len(DATA), len(DATA))
    assert all(b[0] >= a[0] for a, b in itertools.pairwise(seen))


def test_a_partial_file_never_takes_the_final_name_and_is_resumed_later(server, tmp_path):
    dest = tmp_path / "a.zip"
    with pytest.raises(DownloadError, match=r"bytes kept in .*a\.zip\.part to resume"):
        download_file([server.url("cut")], dest, MD5, attempts=1)
    assert not dest.exists()
    assert (tmp_path / "a.zip.part").read_bytes() == DATA[: len(DATA) // 3]
    download_file([server.url("ok")], dest, MD5)  # a later run, another mirror: resumes
    assert dest.read_bytes() == DATA
    assert server.log[-1] == ("/ok/data.bin", f"bytes={len(DATA) // 3}-")


def test_a_wrong_checksum_is_discarded_and_the_next_mirror_tried(server, tmp_path):
    dest = tmp_path / "a.zip"
    with pytest.raises(DownloadError, match=f"MD5 of the downloaded file is .*expected {MD5}"):
        download_file([server.url("bad")], dest, MD5)
    assert list(tmp_path.iterdir()) == []
    download_file([server.url("bad"), server.url("ok")], dest, MD5)
    assert dest.read_bytes() == DATA


def test_forbidden_and_missing_mirrors_are_skipped(server, tmp_path):
    dest = tmp_path / "a.zip"
    download_file([server.url("403"), server.url("404"), server.url("ok")], dest, MD5)
    assert dest.read_bytes() == DATA
    assert [p for p, _ in server.log] == ["/403/data.bin", "/404/data.bin", "/ok/data.bin"]
    with pytest.raises(DownloadError) as info:
        download_file([server.url("403"), server.url("404")], tmp_path / "b.zip", MD5)
    assert "/403/data.bin: HTTP 403" in str(info.value)
    assert "/404/data.bin: HTTP 404" in str(info.value)
    assert not (tmp_path / "b.zip").exists()


def test_a_silent_host_times_out_and_the_next_mirror_is_tried(server, tmp_path):
    start = time.monotonic()
    download_file([server.url("slow"), server.url("ok")], tmp_path / "a.zip", MD5, timeout=0.2)
    assert (tmp_path / "a.zip").read_bytes() == DATA
    assert [p for p, _ in server.log] == ["/slow/data.bin", "/ok/data.bin"]
    assert time.monotonic() - start < 5


def test_a_server_ignoring_range_restarts_from_zero(server, tmp_path):
    (tmp_path / "a.zip.part").write_bytes(b"stale bytes of something else")
    download_file([server.url("norange")], tmp_path / "a.zip", MD5)
    assert (tmp_path / "a.zip").read_bytes() == DATA


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="only http"):
        download_file(["file:///etc/passwd"], tmp_path / "a")
    with pytest.raises(ValueError, match="no URL"):
        download_file([], tmp_path / "a")


def test_progress_bar_writes_percentages():
    out = io.StringIO()
    bar = ProgressBar("a.zip", stream=out)
    bar(0, 2_000_000)
    bar(2_000_000, 2_000_000)
    assert out.getvalue().endswith("a.zip: 2.0 / 2.0 MB (100%)\n")


def _serve_fake_nmnist(server, tmp_path):
    served = tmp_path / "served"
    FAKES["nmnist"](served, "train", archive=True)
    server.files["Train.zip"] = (served / "Train.zip").read_bytes()
    return FAKES["nmnist"](tmp_path / "expected", "train", archive=False)


def test_dataset_downloads_from_the_next_mirror(server, tmp_path, monkeypatch):
    targets, counts = _serve_fake_nmnist(server, tmp_path)
    cls = get_dataset("nmnist")
    original = cls.resources
    archive_md5 = hashlib.md5(server.files["Train.zip"], usedforsecurity=False).hexdigest()
    mirrors = (server.url("403", "Train.zip"), server.url("cut", "Train.zip"))

    def resources(self):
        return [dataclasses.replace(r, md5=archive_md5, mirrors=mirrors) for r in original(self)]

    monkeypatch.setattr(cls, "resources", resources)
    root = tmp_path / "root"
    ds = cls(root, split="train", download=True, progress=False)
    assert ds.targets.tolist() == targets
    assert [ds[i][0].size for i in range(len(ds))] == counts
    assert sorted(p.name for p in root.iterdir()) == ["Train", "Train.zip"]


def test_dataset_without_network_lists_files_urls_and_checksums(tmp_path, monkeypatch):
    cls = get_dataset("nmnist")
    original = cls.resources
    closed = "http://127.0.0.1:9/Train.zip"  # the discard port: nothing listens, refused at once

    def resources(self):
        return [dataclasses.replace(r, mirrors=(closed,)) for r in original(self)]

    monkeypatch.setattr(cls, "resources", resources)
    with pytest.raises(DatasetNotFoundError) as info:
        cls(tmp_path / "root", download=True, progress=False)
    msg = str(info.value)
    assert "The download failed" in msg and "Train.zip" in msg
    assert "20959b8e626244a1b502305a9e6e2031" in msg and closed in msg
    assert "https://www.garrickorchard.com/datasets/n-mnist" in msg
    assert not (tmp_path / "root" / "Train.zip").exists()


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_mirrors_are_direct_https_links(name):
    cls = get_dataset(name)
    for split in cls.splits:
        obj = cls.__new__(cls)
        obj.split = split
        for res in obj.resources():
            assert all(u.startswith("https://") for u in res.mirrors), res
            assert res.md5 is not None or not res.mirrors or name == "asl_dvs", res
