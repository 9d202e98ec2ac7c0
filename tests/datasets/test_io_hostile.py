"""Readers under hostile sizes and odd inputs: memory bounded by the events returned, ranges
read only the range, directories and empty files refused clearly, MATLAB ATIS structs read."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from event_writers import atis_record, write_atis_bin, write_evt2, write_evt3

from snn.datasets.io import (
    READERS,
    EventFormatError,
    _common,
    detect_format,
    read_aedat2,
    read_atis_bin,
    read_events,
    read_evt2,
    read_evt3,
    read_mat,
)

ROOT = Path(__file__).resolve().parents[2]
GB = 1 << 30


def test_a_directory_is_not_an_event_file(tmp_path):
    for call in [detect_format, read_events, *READERS.values()]:
        with pytest.raises(EventFormatError, match="is a directory"):
            call(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_events(tmp_path / "missing.raw")


def test_bs2_is_the_atis_format_of_n_mnist(tmp_path):
    write_atis_bin(tmp_path / "00002.bs2", [3, 4], [5, 6], [10, 20], [1, 0])
    assert detect_format(tmp_path / "00002.bs2") == "atis_bin"
    rec = read_events(tmp_path / "00002.bs2", sensor_size=(34, 34, 2))
    assert rec.events["x"].tolist() == [3, 4] and rec.events["p"].tolist() == [True, False]


@pytest.mark.parametrize("reader", [read_evt2, read_evt3])
def test_empty_raw_file_takes_the_headers_sensor_size(tmp_path, reader):
    version = "2.0" if reader is read_evt2 else "3.0"
    path = tmp_path / "empty.raw"
    path.write_bytes(f"% evt {version}\n% geometry 320x240\n% end\n".encode())
    rec = reader(path)
    assert rec.events.size == 0 and rec.sensor_size == (320, 240, 2)
    assert rec.header["sensor_size_from"] == "header"
    path.write_bytes(f"% evt {version}\n% end\n".encode())
    with pytest.raises(EventFormatError, match=r"empty.raw.*no events and no sensor size"):
        reader(path)
    assert reader(path, sensor_size=(8, 8, 2)).sensor_size == (8, 8, 2)


def test_empty_atis_file_needs_a_sensor_size(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    with pytest.raises(EventFormatError, match=r"empty.bin.*sensor_size"):
        read_atis_bin(path)
    rec = read_atis_bin(path, sensor_size=(34, 34, 2))
    assert rec.events.size == 0 and rec.sensor_size == (34, 34, 2)
    # Only overflow markers: still no event.
    path.write_bytes(atis_record(0, 240, 0, 0) * 3)
    with pytest.raises(EventFormatError, match="sensor_size"):
        read_atis_bin(path)


def _ranges(n: int) -> list[dict]:
    return [
        {},
        {"start": 3, "stop": n // 2},
        {"start": n - 5},
        {"stop": 0},
        {"t_start": 1000, "t_end": 60_000},
    ]


def _read_or_error(reader, path, **kw):
    try:
        return reader(path, **kw)
    except EventFormatError as exc:  # e.g. nothing before stop=0 to tell the sensor size
        return str(exc)


@pytest.mark.parametrize(
    "name, reader, chunk",
    [
        ("gen3_sample_evt2.raw", read_evt2, 4096),
        ("gen4_pedestrians_evt3.raw", read_evt3, 30),
        ("nmnist_sample.bin", read_atis_bin, 35),
    ],
)
def test_chunked_decoding_matches_one_chunk(fixtures_dir, monkeypatch, name, reader, chunk):
    path = fixtures_dir / name
    monkeypatch.setattr(_common, "CHUNK_BYTES", 1 << 26)  # the whole file in one chunk
    n = reader(path).events.size
    whole = [_read_or_error(reader, path, **kw) for kw in _ranges(n)]
    monkeypatch.setattr(_common, "CHUNK_BYTES", chunk)  # state carried across many chunks
    for kw, ref in zip(_ranges(n), whole):
        rec = _read_or_error(reader, path, **kw)
        if isinstance(ref, str):
            assert rec == ref
            continue
        np.testing.assert_array_equal(rec.events, ref.events, err_msg=f"{name} {kw}")
        assert rec.sensor_size == ref.sensor_size
    assert whole[1].events.size == n // 2 - 3 and n > 100


def test_aedat2_wraps_and_other_records_cross_chunk_boundaries(tmp_path, monkeypatch):
    from event_writers import dvs128_address, write_aedat2

    rng = np.random.default_rng(0)
    n = 300
    addresses = [
        dvs128_address(int(rng.integers(128)), int(rng.integers(128)), i % 2, external=i % 7 == 0)
        for i in range(n)
    ]
    t = (np.arange(n, dtype=np.int64) * 40_000_000) % (1 << 32)  # wraps of the int32 clock
    write_aedat2(tmp_path / "w.aedat", addresses, t.astype(np.uint32).view(np.int32), "DVS128")
    monkeypatch.setattr(_common, "CHUNK_BYTES", 1 << 20)
    whole = [_read_or_error(read_aedat2, tmp_path / "w.aedat", **kw) for kw in _ranges(250)]
    assert np.all(np.diff(whole[0].events["t"]) > 0)  # unwrapped
    assert whole[0].header["other_records"] == (n + 6) // 7
    for chunk in (8, 24, 200):
        monkeypatch.setattr(_common, "CHUNK_BYTES", chunk)
        for kw, ref in zip(_ranges(250), whole):
            rec = read_aedat2(tmp_path / "w.aedat", **kw)
            np.testing.assert_array_equal(rec.events, ref.events, err_msg=f"{chunk} {kw}")


def test_evt3_vector_and_time_state_cross_chunk_boundaries(tmp_path, monkeypatch):
    from event_writers import evt3_words

    words = [evt3_words("TIME_HIGH", 1), evt3_words("ADDR_Y", 7)]
    for k in range(40):
        words += [evt3_words("TIME_LOW", k), evt3_words("VECT_BASE_X", 10 * (k % 9), k % 2),
                  evt3_words("VECT_12", 0b101000000011), evt3_words("ADDR_X", k, 1)]  # fmt: skip
    write_evt3(tmp_path / "v.raw", words)
    monkeypatch.setattr(_common, "CHUNK_BYTES", 1 << 20)
    ref = read_evt3(tmp_path / "v.raw")
    for chunk in (2, 6, 14):
        monkeypatch.setattr(_common, "CHUNK_BYTES", chunk)
        np.testing.assert_array_equal(read_evt3(tmp_path / "v.raw").events, ref.events)
    assert ref.events.size == 40 * 5


# Peak memory of reader calls, measured in a fresh process after the imports and a warm-up call
# on a small file (numba compilation): the peak of traced allocations (numpy reports its arrays
# to tracemalloc, touched or not) and the growth of the peak resident set (ru_maxrss).
_MEASURE = textwrap.dedent(
    """
    import json, resource, sys, time, tracemalloc
    from snn.datasets.io import READERS, EventFormatError
    tracemalloc.start()
    results = []
    for fmt, path, small, kwargs in json.loads(sys.argv[1]):
        reader = READERS[fmt]
        try:
            reader(small, **kwargs)
        except EventFormatError:
            pass
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.reset_peak()
        start = time.process_time()
        try:
            rec = reader(path, **kwargs)
            result = [int(rec.events.size), list(rec.sensor_size)]
        except EventFormatError as exc:
            result = str(exc)
        seconds = time.process_time() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
        peak = max(tracemalloc.get_traced_memory()[1], rss * 1024)
        results.append({"result": result, "peak_mib": peak / 2**20,
                        "cpu_seconds": seconds})
    print(json.dumps(results))
    """
)


def _sparse(path: Path, head: bytes, size: int) -> str:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return str(path)


@pytest.mark.slow
def test_two_gigabyte_files_cost_a_fixed_buffer(tmp_path):
    import json

    write_evt2(tmp_path / "small.raw", [1], [2], [100], [1])
    aedat2_head = b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.caviar.chip.retina.Tmpdiff128\r\n"
    (tmp_path / "small.aedat").write_bytes(aedat2_head + bytes(8))
    layout = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")])
    np.save(tmp_path / "small.npy", np.zeros(1, layout))
    big_npy = np.lib.format.open_memmap(
        tmp_path / "zeros.npy", mode="w+", dtype=layout, shape=(2 * GB // layout.itemsize,)
    )
    del big_npy  # a sparse 2 GB file of zero events
    write_atis_bin(tmp_path / "small.bin", [1], [2], [3], [1])
    head = b"% evt 2.0\n% geometry 640x480\n% end\n"
    cases = [
        # EVT 2.0, 1 GB of zero words: CD events before any time base, none returned.
        ("evt2", _sparse(tmp_path / "zeros.raw", head, GB + len(head)),
         str(tmp_path / "small.raw"), {}),
        # AEDAT 4.0: a 2 GB file that is not one is refused from its first bytes.
        ("aedat4", _sparse(tmp_path / "zeros.aedat4", b"", 2 * GB),
         _sparse(tmp_path / "small.aedat4", b"#!AER-DAT4.0\r\n", 100), {}),
        # ATIS: a range of a 2 GB file reads that range only.
        ("atis_bin", _sparse(tmp_path / "zeros.bin", atis_record(3, 4, 5, 1), 2 * GB // 5 * 5),
         str(tmp_path / "small.bin"), {"stop": 1000, "sensor_size": [34, 34, 2]}),
        # AEDAT 2.0: likewise.
        ("aedat2", _sparse(tmp_path / "zeros.aedat", aedat2_head, len(aedat2_head) + 2 * GB),
         str(tmp_path / "small.aedat"), {"start": 10, "stop": 1000}),
        # .npy: memory-mapped, the range is all that is read.
        ("numpy", str(tmp_path / "zeros.npy"), str(tmp_path / "small.npy"),
         {"start": 5, "stop": 1005}),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps(cases)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    evt2, aedat4, atis, aedat2, npy = json.loads(proc.stdout)
    assert evt2["result"] == [0, [640, 480, 2]] and evt2["peak_mib"] < 100, evt2
    assert "version line" in aedat4["result"] and aedat4["peak_mib"] < 100, aedat4
    assert aedat4["cpu_seconds"] < 1, aedat4  # nothing but the first bytes is read
    assert atis["result"] == [1000, [34, 34, 2]] and atis["peak_mib"] < 100, atis
    assert atis["cpu_seconds"] < 1, atis
    assert aedat2["result"] == [990, [128, 128, 2]] and aedat2["peak_mib"] < 100, aedat2
    assert aedat2["cpu_seconds"] < 1, aedat2
    assert npy["result"] == [1000, [1, 1, 2]] and npy["peak_mib"] < 100, npy
    assert npy["cpu_seconds"] < 1, npy


def test_matlab_atis_struct_is_read_with_0_based_coordinates(tmp_path):
    td = {
        "x": np.array([[1.0], [34.0], [5.0]]),
        "y": np.array([[2.0], [1.0], [34.0]]),
        "ts": np.array([[10.0], [20.0], [30.0]]),
        "p": np.array([[2.0], [1.0], [2.0]]),  # 1 OFF, 2 ON (Read_Ndataset.m)
    }
    scipy.io.savemat(tmp_path / "td.mat", {"TD": td})
    for kw in ({}, {"layout": "struct"}, {"layout": "struct", "variable": "TD"}):
        rec = read_mat(tmp_path / "td.mat", **kw)
        assert rec.events["x"].tolist() == [0, 33, 4]
        assert rec.events["y"].tolist() == [1, 0, 33]
        assert rec.events["t"].tolist() == [10, 20, 30]
        assert rec.events["p"].tolist() == [True, False, True]
        assert rec.header["layout"] == "struct" and rec.header["variable"] == "TD"
    assert read_events(tmp_path / "td.mat", sensor_size=(34, 34, 2)).events.size == 3
    bad = dict(td, p=np.array([[0.0], [1.0], [2.0]]))
    scipy.io.savemat(tmp_path / "bad_p.mat", {"TD": bad})
    with pytest.raises(EventFormatError, match=r"bad_p.mat.*TD.p of event 0 is 0"):
        read_mat(tmp_path / "bad_p.mat")
    zero = dict(td, x=np.array([[0.0], [1.0], [2.0]]))
    scipy.io.savemat(tmp_path / "zero_x.mat", {"TD": zero})
    with pytest.raises(EventFormatError, match="1-based"):
        read_mat(tmp_path / "zero_x.mat")


def test_matlab_73_atis_struct(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "td73.mat", "w") as f:
        g = f.create_group("TD")
        for name, values in (("x", [3, 1]), ("y", [1, 2]), ("ts", [5, 9]), ("p", [1, 2])):
            g.create_dataset(name, data=np.array([values], dtype=np.float64))  # 1 x N
    rec = read_mat(tmp_path / "td73.mat")
    assert rec.events["x"].tolist() == [2, 0] and rec.events["p"].tolist() == [False, True]
