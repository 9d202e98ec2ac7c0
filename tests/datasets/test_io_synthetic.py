"""Readers on small files written byte for byte from the format specifications."""

from __future__ import annotations

import numpy as np
import pytest
from event_writers import (
    aedat3_packet,
    aedat4_info,
    atis_record,
    davis_address,
    dvs128_address,
    evt3_words,
    evts_packet,
    polarity_events,
    write_aedat2,
    write_aedat3,
    write_aedat4,
    write_dat,
    write_evt2,
    write_evt3,
    write_shd,
)

from snn.datasets.io import (
    EventFormatError,
    SpikeAudioFile,
    read_aedat2,
    read_aedat4,
    read_atis_bin,
    read_dat,
    read_events,
    read_evt2,
    read_evt3,
    read_mat,
)


def rows(events):
    return [tuple(int(v) for v in (e["x"], e["y"], e["t"], e["p"])) for e in events]


def test_evt2_golden(tmp_path):
    w = [
        (0x1 << 28) | (3 << 11) | 4,  # CD before any TIME_HIGH: no time base
        (0x8 << 28) | 100,  # time high -> 6400
        (0x1 << 28) | (5 << 22) | (10 << 11) | 20,
        (0x0 << 28) | (63 << 22) | (639 << 11) | 479,
        (0xA << 28) | 123,  # external trigger, ignored
        (0x8 << 28) | 0x0FFFFFFF,
        (0x1 << 28) | (1 << 22) | (7 << 11) | 8,
        (0x8 << 28) | 1,  # time high goes backwards: 34-bit wrap
        (0x0 << 28) | (2 << 22) | (9 << 11) | 9,
    ]
    path = tmp_path / "a.raw"
    path.write_bytes(b"% evt 2.0\n% geometry 640x480\n% end\n" + np.array(w, "<u4").tobytes())
    rec = read_evt2(path)
    assert rec.sensor_size == (640, 480, 2)
    assert rec.header["events_without_time_base"] == 1
    big = (0x0FFFFFFF << 6) | 1
    assert rows(rec.events) == [
        (10, 20, 6405, 1),
        (639, 479, 6463, 0),
        (7, 8, big, 1),
        (9, 9, (1 << 34) + 64 + 2, 0),
    ]


def test_evt2_roundtrip_random(tmp_path):
    rng = np.random.default_rng(0)
    n = 5000
    t = np.sort(rng.integers(0, 10_000_000, n))
    x, y, p = rng.integers(0, 640, n), rng.integers(0, 480, n), rng.integers(0, 2, n)
    write_evt2(tmp_path / "r.raw", x, y, t, p)
    ev = read_evt2(tmp_path / "r.raw").events
    np.testing.assert_array_equal(ev["t"], t)
    np.testing.assert_array_equal(ev["x"], x)
    np.testing.assert_array_equal(ev["y"], y)
    np.testing.assert_array_equal(ev["p"], p.astype(bool))


def evt3_stream():
    W = evt3_words
    words = [
        W("ADDR_Y", 1),
        W("ADDR_X", 2),  # before any TIME_HIGH: no time base
        W("TIME_HIGH", 5),
        W("ADDR_Y", 10),
        W("TIME_LOW", 0x10),
        W("ADDR_X", 3, flag=1),
        W("VECT_BASE_X", 100, flag=0),
        W("VECT_12", 0b100000000101),
        W("VECT_8", 0b10000001),
        W("TIME_LOW", 0x8),  # smaller low part under the same high part: not a wrap
        W("ADDR_X", 5),
        W("TIME_HIGH", 0xFFF),
        W("ADDR_Y", 700),
        W("ADDR_X", 1279, flag=1),
        W("TIME_HIGH", 1),  # high part goes backwards: 24-bit wrap
        W("TIME_LOW", 2),
        W("EXT_TRIGGER", 0x21),
        W("OTHERS", 0x7),
        W("CONTINUED_12", 0xABC),
        W("CONTINUED_4", 0x3),
        W("ADDR_X", 0),
    ]
    expected = [
        (3, 10, 20496, 1),
        (100, 10, 20496, 0),
        (102, 10, 20496, 0),
        (111, 10, 20496, 0),
        (112, 10, 20496, 0),
        (119, 10, 20496, 0),
        (5, 10, 20488, 0),
        (1279, 700, 0xFFF << 12, 1),
        (0, 700, (1 << 24) + (1 << 12) + 2, 0),
    ]
    return words, expected


def test_evt3_golden(tmp_path):
    words, expected = evt3_stream()
    write_evt3(tmp_path / "a.raw", words)
    rec = read_evt3(tmp_path / "a.raw")
    assert rows(rec.events) == expected
    assert rec.header["events_without_time_base"] == 1
    assert rec.sensor_size == (1280, 720, 2)
    assert rows(read_evt3(tmp_path / "a.raw", start=2, stop=5).events) == expected[2:5]
    got = read_evt3(tmp_path / "a.raw", t_start=20490, t_end=20500).events
    assert rows(got) == expected[:6]


def test_range_reads_stop_before_corrupt_tail(tmp_path):
    """Decoding stops at ``stop`` / ``t_end``: a corrupt word after them is never reached."""
    words, expected = evt3_stream()
    words = [*words[:11], 0x1000]  # reserved type 0x1 after the 7th event
    write_evt3(tmp_path / "a.raw", words)
    with pytest.raises(EventFormatError, match="reserved"):
        read_evt3(tmp_path / "a.raw")
    assert rows(read_evt3(tmp_path / "a.raw", stop=3).events) == expected[:3]
    w2 = [(0x8 << 28) | 1, (1 << 28) | (1 << 11) | 1, (0x8 << 28) | 5, 0x3 << 28]
    p2 = tmp_path / "b.raw"
    p2.write_bytes(b"% evt 2.0\n% end\n" + np.array(w2, "<u4").tobytes())
    with pytest.raises(EventFormatError, match="reserved"):
        read_evt2(p2)
    assert rows(read_evt2(p2, t_end=100).events) == [(1, 1, 64, 1)]


def test_dat_golden_and_ranges(tmp_path):
    x, y, t, p = [1, 303, 7], [2, 239, 0], [10, 20, 30], [1, 0, 1]
    write_dat(tmp_path / "a.dat", x, y, t, p)
    rec = read_dat(tmp_path / "a.dat")
    assert rows(rec.events) == [(1, 2, 10, 1), (303, 239, 20, 0), (7, 0, 30, 1)]
    assert rec.sensor_size == (304, 240, 2)
    assert rows(read_dat(tmp_path / "a.dat", t_start=15, t_end=30).events) == [(303, 239, 20, 0)]
    assert rows(read_dat(tmp_path / "a.dat", start=2).events) == [(7, 0, 30, 1)]


def test_atis_overflow_golden(tmp_path):
    data = atis_record(1, 2, 100, 1) + atis_record(0, 240, 0, 0) + atis_record(3, 4, 50, 0)
    data += atis_record(33, 33, 0x7FFFFF, 1)
    (tmp_path / "a.bin").write_bytes(data)
    rec = read_atis_bin(tmp_path / "a.bin", sensor_size=(34, 34, 2))
    assert rows(rec.events) == [(1, 2, 100, 1), (3, 4, 8242, 0), (33, 33, 0x7FFFFF + 8192, 1)]
    assert rec.header["overflow_markers"] == 1


def test_aedat2_dvs128(tmp_path):
    addr = [dvs128_address(5, 7, 1), dvs128_address(0, 0, 1, external=1), dvs128_address(127, 3, 0)]
    write_aedat2(tmp_path / "a.aedat", addr, [10, 11, 12], "ch.unizh.ini.jaer.chip.retina.DVS128")
    rec = read_events(tmp_path / "a.aedat")
    assert rows(rec.events) == [(5, 7, 10, 1), (127, 3, 12, 0)]
    assert rec.sensor_size == (128, 128, 2)
    assert rec.header["other_records"] == 1


def test_aedat2_davis_and_wrap(tmp_path):
    addr = [
        davis_address(345, 259, 1),
        davis_address(10, 10, 0, aps=1),
        davis_address(3, 4, 0, imu=1),
        davis_address(0, 1, 0),
    ]
    ts = [2**31 - 2, 5, 6, -(2**31) + 3]  # int32 wraps between the first and last event
    write_aedat2(tmp_path / "a.aedat", addr, ts, "eu.seebetter.ini.chips.davis.Davis346red")
    rec = read_aedat2(tmp_path / "a.aedat")
    assert rec.sensor_size == (346, 260, 2)
    assert rows(rec.events) == [(345, 259, 2**31 - 2, 1), (0, 1, 2**31 + 3, 0)]


def test_aedat3_polarity_only_validity_and_overflow(tmp_path):
    pol1 = polarity_events([1, 2, 127], [3, 4, 127], [100, 200, 300], [1, 0, 1], valid=[1, 0, 1])
    special = np.array([(0x5 << 1) | 1, 150], dtype="<u4").tobytes()  # a special event
    frame = bytes(40)  # two 20-byte "frame" events
    pol2 = polarity_events([9], [8], [7], [0])
    packets = [
        aedat3_packet(1, 1, pol1, 8, valid=2),
        aedat3_packet(0, 1, special, 8),
        aedat3_packet(2, 1, frame, 20),
        aedat3_packet(1, 1, pol2, 8, overflow=1),
    ]
    write_aedat3(tmp_path / "a.aedat", packets)
    rec = read_events(tmp_path / "a.aedat")
    assert rows(rec.events) == [(1, 3, 100, 1), (127, 127, 300, 1), (9, 8, (1 << 31) + 7, 0)]
    assert rec.sensor_size == (128, 128, 2)
    assert rec.header["skipped_packets"] == {0: 1, 2: 1}


@pytest.mark.parametrize("compression", [0, 1, 3])
def test_aedat4_streams_and_compression(tmp_path, compression):
    info = aedat4_info([(0, "FRME", "frames", 346, 260), (1, "EVTS", "events", 346, 260)])
    packets = [
        (0, b"not an event packet"),
        (1, evts_packet([5, 6], [1, 345], [2, 259], [1, 0])),
        (0, b"frame again"),
        (1, evts_packet([9], [7], [8], [1])),
    ]
    path = tmp_path / "a.aedat4"
    write_aedat4(path, packets, compression, info)
    rec = read_aedat4(path)
    assert rec.header["stream"] == 1
    assert rec.sensor_size == (346, 260, 2)
    assert rows(rec.events) == [(1, 2, 5, 1), (345, 259, 6, 0), (7, 8, 9, 1)]
    assert rows(read_aedat4(path, stream="events", t_start=6).events) == rows(rec.events)[1:]
    with pytest.raises(ValueError, match="not an event stream"):
        read_aedat4(path, stream=0)


def test_mat_layouts(tmp_path):
    import scipy.io

    scipy.io.savemat(
        tmp_path / "asl.mat",
        {
            "x": np.array([[1], [239]]),
            "y": np.array([[2], [179]]),
            "ts": np.array([[10], [20]]),
            "pol": np.array([[1], [0]]),
        },
    )
    rec = read_mat(tmp_path / "asl.mat", sensor_size=(240, 180, 2))
    assert rows(rec.events) == [(1, 2, 10, 1), (239, 179, 20, 0)]
    m = np.array([[3, 4, -1, 7], [5, 6, 1, 9]], dtype=np.int32)
    scipy.io.savemat(tmp_path / "m.mat", {"events": m})
    assert rows(read_mat(tmp_path / "m.mat").events) == [(3, 4, 7, 0), (5, 6, 9, 1)]
    got = read_mat(tmp_path / "m.mat", columns=("t", "x", "p", "y")).events
    assert rows(got) == [(4, 7, 3, 0), (6, 9, 5, 1)]


def test_spike_audio(tmp_path):
    write_shd(tmp_path / "s.h5", [[0.0, 0.0015, 0.5], []], [[0, 699, 3], []], [4, 7])
    f = SpikeAudioFile(tmp_path / "s.h5")
    assert len(f) == 2
    rec, label = f.read(0)
    assert label == 4
    assert rec.sensor_size == (700, 1, 1)
    assert rec.events.dtype.names == ("t", "x", "p")
    assert rec.events["t"].tolist() == [0, 1500, 500000]
    assert rec.events["x"].tolist() == [0, 699, 3]
    assert rec.events["p"].tolist() == [1, 1, 1]
    assert f.read(1)[0].events.size == 0 and f.read(1)[1] == 7
    with pytest.raises(IndexError):
        f.read(2)
