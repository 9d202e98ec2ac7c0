"""Bad input: each reader raises EventFormatError naming the file and the byte offset."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from event_writers import (
    aedat3_packet,
    aedat4_info,
    atis_record,
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
    READERS,
    EventFormatError,
    SpikeAudioFile,
    read_aedat2,
    read_aedat3,
    read_aedat4,
    read_atis_bin,
    read_dat,
    read_evt2,
    read_evt3,
    read_mat,
)

EVT2_HEADER = b"% evt 2.0\n% geometry 640x480\n% end\n"


def raises_at(offset, match=None):
    class _Ctx:
        def __enter__(self):
            self.cm = pytest.raises(EventFormatError, match=match)
            self.info = self.cm.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.cm.__exit__(*exc)
            assert self.info.value.offset == offset, str(self.info.value)
            assert "at byte" in str(self.info.value) or offset is None
            return handled

    return _Ctx()


@pytest.mark.parametrize("name", sorted(READERS))
def test_missing_file(tmp_path, name):
    with pytest.raises(FileNotFoundError, match="nope"):
        READERS[name](tmp_path / "nope")


def test_error_message_names_file(tmp_path):
    (tmp_path / "bad.raw").write_bytes(EVT2_HEADER + b"\x00\x00")
    with pytest.raises(EventFormatError) as info:
        read_evt2(tmp_path / "bad.raw")
    assert "bad.raw" in str(info.value) and isinstance(info.value, ValueError)


def test_evt2_truncated_reserved_out_of_range(tmp_path):
    p = tmp_path / "a.raw"
    p.write_bytes(EVT2_HEADER + np.array([(8 << 28) | 1], "<u4").tobytes() + b"\x01\x02")
    with raises_at(len(EVT2_HEADER) + 4, "truncated"):
        read_evt2(p)
    p.write_bytes(EVT2_HEADER + np.array([(8 << 28) | 1, 0x5 << 28], "<u4").tobytes())
    with raises_at(len(EVT2_HEADER) + 4, "reserved"):
        read_evt2(p)
    write_evt2(p, [10, 640], [1, 1], [5, 6], [0, 1])
    with raises_at(len(EVT2_HEADER) + 8, "outside the sensor"):
        read_evt2(p)
    (tmp_path / "b.raw").write_bytes(b"% evt 3.0\n% end\n")
    with raises_at(0, "declares encoding"):
        read_evt2(tmp_path / "b.raw")


def test_evt3_errors(tmp_path):
    header = "% evt 3.0\n% geometry 1280x720\n% end\n"
    p = tmp_path / "a.raw"
    W = evt3_words
    write_evt3(p, [W("TIME_HIGH", 1), W("ADDR_Y", 720)])
    with raises_at(len(header) + 2, "outside the sensor"):
        read_evt3(p)
    write_evt3(p, [W("TIME_HIGH", 1), W("ADDR_Y", 1), W("VECT_BASE_X", 1275), W("VECT_8", 0x80)])
    with raises_at(len(header) + 6, "outside the sensor"):
        read_evt3(p)
    write_evt3(p, [W("TIME_HIGH", 1), 0x9000])
    with raises_at(len(header) + 2, "reserved"):
        read_evt3(p)
    p.write_bytes(header.encode() + b"\x00")
    with raises_at(len(header), "truncated"):
        read_evt3(p)


def test_dat_errors(tmp_path):
    header = "% Version 2\n% Width 304\n% Height 240\n"
    p = tmp_path / "a.dat"
    write_dat(p, [1, 400], [1, 1], [0, 1], [0, 1])
    with raises_at(len(header) + 2 + 8, "outside the sensor"):
        read_dat(p)
    write_dat(p, [1, 2], [1, 1], [0, 1], [0, 2])
    with raises_at(len(header) + 2 + 8, "polarity"):
        read_dat(p)
    write_dat(p, [1], [1], [0], [0])
    p.write_bytes(p.read_bytes()[:-3])
    with raises_at(len(header) + 2, "inside a record"):
        read_dat(p)
    p.write_bytes(header.encode() + bytes([7, 8]))
    with raises_at(len(header), "not a CD event type"):
        read_dat(p)
    p.write_bytes(header.encode())
    with raises_at(len(header), "missing event type"):
        read_dat(p)


def test_atis_errors(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(atis_record(1, 1, 1, 1) + b"\x00\x01")
    with raises_at(5, "inside a 5-byte event"):
        read_atis_bin(p)
    p.write_bytes(atis_record(1, 1, 1, 1) + atis_record(0, 240, 0, 0) + atis_record(34, 1, 2, 1))
    with raises_at(10, "outside the sensor"):
        read_atis_bin(p, sensor_size=(34, 34, 2))


def test_aedat2_errors(tmp_path):
    p = tmp_path / "a.aedat"
    p.write_bytes(b"#!AER-DAT3.1\r\n")
    with raises_at(0, "AER-DAT2"):
        read_aedat2(p)
    write_aedat2(p, [dvs128_address(1, 1, 1)], [0], "some.UnknownChip")
    with raises_at(0, "layout"):
        read_aedat2(p)
    assert read_aedat2(p, layout="dvs128").events.size == 1
    p.write_bytes(p.read_bytes() + b"\x01\x02\x03")
    header_len = len(p.read_bytes()) - 11
    with raises_at(header_len + 8, "inside an 8-byte record"):
        read_aedat2(p, layout="dvs128")
    with pytest.raises(ValueError, match="layout"):
        read_aedat2(p, layout="dvs")


def test_aedat3_errors(tmp_path):
    p = tmp_path / "a.aedat"
    good = aedat3_packet(1, 1, polarity_events([1], [1], [1], [1]), 8)
    write_aedat3(p, [good])
    header_len = len(p.read_bytes()) - len(good)
    write_aedat3(p, [good, good[:-4]])
    with raises_at(header_len + len(good), "past the file end"):
        read_aedat3(p)
    write_aedat3(p, [good, good[:20]])
    with raises_at(header_len + len(good), "inside a packet header"):
        read_aedat3(p)
    bad = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 1, 5, 1) + bytes(8)  # number > capacity
    write_aedat3(p, [bad])
    with raises_at(header_len, "bad packet header"):
        read_aedat3(p)
    write_aedat3(p, [aedat3_packet(1, 1, polarity_events([128], [1], [1], [1]), 8)])
    with raises_at(header_len + 28, "outside the sensor"):
        read_aedat3(p)
    p.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n")
    with pytest.raises(EventFormatError, match="END-HEADER"):
        read_aedat3(p)


def test_aedat4_errors(tmp_path):
    p = tmp_path / "a.aedat4"
    info = aedat4_info([(0, "EVTS", "events", 32, 32)])
    write_aedat4(p, [(0, evts_packet([1], [1], [1], 1))], 1, info)
    data = p.read_bytes()
    p.write_bytes(b"#!AER-DAT3.1\r\n" + data[14:])
    with raises_at(0, "AER-DAT4"):
        read_aedat4(p)
    p.write_bytes(data[:14] + struct.pack("<i", 10**6) + data[18:])
    with raises_at(14, "header size"):
        read_aedat4(p)
    head_size = struct.unpack_from("<i", data, 14)[0]
    first_packet = 18 + head_size
    corrupt = bytearray(data)
    corrupt[first_packet + 8 : first_packet + 16] = b"garbage!"
    p.write_bytes(bytes(corrupt))
    with raises_at(first_packet, "decompress"):
        read_aedat4(p)
    p.write_bytes(data[:-3])
    with raises_at(first_packet, "runs past"):
        read_aedat4(p)
    write_aedat4(p, [(0, evts_packet([1], [40], [1], 1))], 0, info)
    with raises_at(first_packet, "outside the sensor"):
        read_aedat4(p)
    write_aedat4(p, [(0, b"\x04\x00\x00\x00abcd")], 0, info)
    with raises_at(first_packet, "bad event packet"):
        read_aedat4(p)


def test_mat_errors(tmp_path):
    import scipy.io

    p = tmp_path / "a.mat"
    p.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    with pytest.raises(EventFormatError, match=r"a\.mat"):
        read_mat(p)
    scipy.io.savemat(p, {"events": np.array([[1, 1, 2, 5]])})
    with pytest.raises(EventFormatError, match="polarity"):
        read_mat(p)
    scipy.io.savemat(p, {"events": np.array([[1, 1, 1]])})
    with pytest.raises(EventFormatError, match="N x 4"):
        read_mat(p)
    scipy.io.savemat(p, {"x": np.array([1, 2]), "y": np.array([1]), "ts": [1], "pol": [1]})
    with pytest.raises(EventFormatError, match="different lengths"):
        read_mat(p)
    scipy.io.savemat(p, {"events": np.array([[1.5, 1, 1, 5]])})
    with pytest.raises(EventFormatError, match="non-integer"):
        read_mat(p)
    scipy.io.savemat(p, {"events": np.array([[200, 1, 1, 5]])})
    with pytest.raises(EventFormatError, match="outside the sensor"):
        read_mat(p, sensor_size=(128, 128, 2))


def test_spike_audio_errors(tmp_path):
    import h5py

    p = tmp_path / "s.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("labels", data=[1])
    with pytest.raises(EventFormatError, match="spikes/times"):
        SpikeAudioFile(p)
    write_shd(p, [[0.1]], [[700]], [0])
    with pytest.raises(EventFormatError, match="outside the sensor"):
        SpikeAudioFile(p).read(0)
    p.write_bytes(b"not hdf5 at all")
    with pytest.raises(EventFormatError, match="HDF5"):
        SpikeAudioFile(p)


@pytest.mark.parametrize("name", sorted(READERS))
def test_range_argument_validation(tmp_path, name):
    with pytest.raises(ValueError, match="stop"):
        READERS[name](tmp_path / "x", start=5, stop=2)
    with pytest.raises(ValueError, match="start"):
        READERS[name](tmp_path / "x", start=-1)
