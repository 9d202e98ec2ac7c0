"""MATLAB files under hostile and truncated sizes (snn/datasets/io/matlab.py, _mat5.py): one
clear error naming the file, and no allocation of what the file only declares."""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import scipy.io

from snn.datasets.io import EventFormatError, read_mat
from snn.datasets.io._mat5 import Mat5

MIB = 1 << 20
EVENTS = np.array([[1, 2, 1, 10], [3, 4, -1, 20], [5, 6, 1, 30]], dtype=np.float64)


def _v5(path, compress: bool = False, **variables) -> bytes:
    scipy.io.savemat(path, variables or {"events": EVENTS}, do_compression=compress)
    return path.read_bytes()


def _peak(call) -> int:
    """Peak traced allocation (bytes) while ``call()`` runs (numpy's buffers included)."""
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _refused(path, match: str, **kw) -> int:
    def call():
        with pytest.raises(EventFormatError, match=match) as info:
            read_mat(path, **kw)
        assert str(path) in str(info.value)

    return _peak(call)


# The uncompressed layout scipy writes for one N x 4 double matrix named "events": the header
# (128 bytes), the miMATRIX tag (8), array flags (16), dimensions (16), name (16), data tag.
TOP, DIMS, DATA = 128, 128 + 8 + 16 + 8, 128 + 8 + 16 + 16 + 16


def test_layout_of_the_crafted_files(tmp_path):
    raw = _v5(tmp_path / "a.mat")
    assert struct.unpack_from("<2I", raw, TOP) == (14, len(raw) - TOP - 8)
    assert struct.unpack_from("<2i", raw, DIMS) == (3, 4)
    assert struct.unpack_from("<2I", raw, DATA) == (9, EVENTS.size * 8)
    assert read_mat(tmp_path / "a.mat").events["t"].tolist() == [10, 20, 30]


def test_declared_sizes_far_beyond_the_file_are_refused_without_allocating_them(tmp_path):
    raw = bytearray(_v5(tmp_path / "a.mat"))
    path = tmp_path / "hostile.mat"
    rows = 67_108_863  # x 4 doubles = 2147483616 bytes, a consistent but absent matrix
    cases = [
        ({TOP + 4: struct.pack("<I", 0x7FFFFFF8)}, "declares 2147483640 bytes but the file holds"),
        ({DIMS: struct.pack("<2i", 500_000_000, 4)}, r"declares dimensions \(500000000, 4\)"),
        ({DATA + 4: struct.pack("<I", 0x7FFFFFF8)}, "but its data holds 2147483640 bytes"),
        ({DIMS: struct.pack("<2i", rows, 4), DATA + 4: struct.pack("<I", rows * 32)},
         "declares 2147483616 bytes but its enclosing element holds only 96"),
    ]
    for patches, match in cases:
        bad = bytearray(raw)
        for at, patch in patches.items():
            bad[at:at + len(patch)] = patch
        path.write_bytes(bytes(bad))
        assert _refused(path, match) < 4 * MIB, match  # the claims are 2-16 GB


def test_a_compressed_element_cannot_claim_more_than_zlib_can_expand(tmp_path):
    inner = struct.pack("<2I", 14, 0x7FFFFFF8) + bytes(64)  # a matrix "of 2 GB"
    body = zlib.compress(inner)
    head = _v5(tmp_path / "a.mat")[:128]
    path = tmp_path / "bomb.mat"
    path.write_bytes(head + struct.pack("<2I", 15, len(body)) + body)
    assert _refused(path, "more than .* compressed bytes can hold") < 4 * MIB


def test_every_truncation_of_a_file_is_one_clear_error(tmp_path):
    for compress in (False, True):
        raw = _v5(tmp_path / "a.mat", compress)
        path = tmp_path / "cut.mat"
        for n in range(len(raw)):
            path.write_bytes(raw[:n])
            with pytest.raises(EventFormatError) as info:
                read_mat(path)
            assert str(path) in str(info.value), (compress, n)


def test_only_the_variables_asked_for_are_decoded(tmp_path):
    big = np.zeros((1_000_000, 1))  # 8 MB of a variable the events do not need
    raw = _v5(tmp_path / "a.mat", True, events=EVENTS, big=big)
    path = tmp_path / "a.mat"
    assert len(raw) < MIB  # zeros compress well
    peak = _peak(lambda: read_mat(path))
    assert peak < 2 * MIB  # the 8 MB variable was never decompressed
    with open(path, "rb") as f:
        assert sorted(Mat5(path, f).variables) == ["big", "events"]


def test_max_events_is_checked_before_reading(tmp_path):
    path = tmp_path / "a.mat"
    _v5(path, True, events=np.zeros((1_000_000, 4)))
    peak = _refused(path, "more than the limit", max_events=1000)
    assert peak < 2 * MIB  # 32 MB declared, refused from the header
    assert read_mat(path, max_events=1_000_000).events.size == 1_000_000
    with pytest.raises(ValueError, match="max_events"):
        read_mat(path, max_events=-1)


def test_compressed_and_plain_files_read_the_same(tmp_path):
    td = {"x": np.array([[1.0], [34.0]]), "y": np.array([[2.0], [1.0]]),
          "ts": np.array([[10.0], [20.0]]), "p": np.array([[2.0], [1.0]])}
    for compress in (False, True):
        _v5(tmp_path / "td.mat", compress, note="a string", TD=td)
        rec = read_mat(tmp_path / "td.mat")
        assert rec.events["x"].tolist() == [0, 33] and rec.header["variable"] == "TD"
        _v5(tmp_path / "m.mat", compress, events=EVENTS.astype(np.int16))
        assert read_mat(tmp_path / "m.mat").events["x"].tolist() == [1, 3, 5]


def test_a_variable_of_another_class_is_refused_by_name(tmp_path):
    _v5(tmp_path / "c.mat", events="not numbers")
    with pytest.raises(EventFormatError, match="'events' is not a numeric array"):
        read_mat(tmp_path / "c.mat", layout="matrix")


def test_matlab_73_dataset_declaring_more_than_it_stores(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "hostile73.mat"
    with h5py.File(path, "w") as f:  # 3.2 GB declared, no chunk ever written
        f.create_dataset("events", shape=(4, 100_000_000), dtype="f8", chunks=(4, 1024))
    assert path.stat().st_size < MIB
    assert _refused(path, "declares 3200000000 bytes of data but the file stores only 0") < (
        4 * MIB)
    with h5py.File(path, "w") as f:
        f.create_dataset("events", data=EVENTS.T)
        f.create_dataset("big", data=np.zeros((4, 1_000_000)))
    peak = _peak(lambda: read_mat(path))
    assert peak < 2 * MIB  # the 32 MB dataset "big" is never read
    assert _refused(path, "more than the limit", max_events=2) < MIB


def test_a_big_endian_file_with_a_small_name_element(tmp_path):
    # written by hand (scipy writes native order): header "MI", an int16 N x 4 matrix whose
    # 4-character name uses the small data element format (count and type in one word)
    ev = np.array([[1, 2, 1, 10], [3, 4, 0, 20]], dtype=">i2")
    data = ev.T.tobytes()  # column-major
    body = (struct.pack(">4I", 6, 8, 10, 0)  # array flags: mxINT16_CLASS
            + struct.pack(">2I2i", 5, 8, 2, 4)  # dimensions 2 x 4
            + struct.pack(">I", (4 << 16) | 1) + b"evts"  # small element: name "evts"
            + struct.pack(">2I", 3, len(data)) + data)  # miINT16 data (16 bytes, no padding)
    header = b"MATLAB 5.0 MAT-file".ljust(116, b" ") + bytes(8) + struct.pack(">H", 0x0100)
    path = tmp_path / "be.mat"
    path.write_bytes(header + b"MI" + struct.pack(">2I", 14, len(body)) + body)
    rec = read_mat(path, variable="evts")
    assert rec.events["x"].tolist() == [1, 3] and rec.events["t"].tolist() == [10, 20]
    assert rec.events["p"].tolist() == [True, False]


def test_values_beyond_64_bits_are_refused(tmp_path):
    for bad in (np.array([[1e19, 1, 1, 5]]), np.array([[1, 1, 1, 2**63]], dtype=np.uint64)):
        _v5(tmp_path / "b.mat", events=bad)
        with pytest.raises(EventFormatError, match="beyond 64 bits"):
            read_mat(tmp_path / "b.mat")
