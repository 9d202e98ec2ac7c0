"""Property test: random and mutated bytes either decode or raise EventFormatError.

No other exception, no hang (a generous per-test timeout, not a per-example deadline: the first
example of a reader pays for imports and numba compilation, and a loaded machine slows every
example, so a wall-clock deadline made these tests pass or fail by chance), and no output larger
than the format can encode from the input size.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from event_writers import (
    aedat3_packet,
    aedat4_info,
    atis_record,
    davis_address,
    evts_packet,
    polarity_events,
    write_aedat2,
    write_aedat3,
    write_aedat4,
    write_dat,
    write_evt2,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snn.datasets.io import READERS, EventFormatError


def _seeds(folder: Path) -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    n = 40
    x, y = rng.integers(0, 300, n), rng.integers(0, 200, n)
    t, p = np.sort(rng.integers(0, 100_000, n)), rng.integers(0, 2, n)
    write_evt2(folder / "a.raw", x, y, t, p)
    words = [0x8001, 0x0005, 0x6010, 0x2803, 0x3064, 0x4805, 0x5081, 0x6008, 0x2005, 0x8FFF]
    evt3 = b"% evt 3.0\n% geometry 1280x720\n% end\n" + np.array(words, "<u2").tobytes()
    write_dat(folder / "a.dat", x, y, t, p)
    write_aedat2(
        folder / "a.aedat",
        [davis_address(int(a), int(b), int(c)) for a, b, c in zip(x, y, p)],
        t,
        "eu.seebetter.ini.chips.davis.Davis346red",
    )
    aedat2 = (folder / "a.aedat").read_bytes()
    write_aedat3(
        folder / "a.aedat",
        [
            aedat3_packet(1, 1, polarity_events(x % 128, y % 128, t, p), 8),
            aedat3_packet(0, 1, bytes(16), 8),
        ],
    )
    aedat3 = (folder / "a.aedat").read_bytes()
    info = aedat4_info([(0, "EVTS", "events", 320, 240)])
    write_aedat4(folder / "a.aedat4", [(0, evts_packet(t, x, y, p))] * 2, 1, info)
    scipy.io.savemat(folder / "a.mat", {"events": np.stack([x, y, 2 * p - 1, t], 1)})
    lip = np.zeros(n, dtype=[("t", "<i4"), ("x", "i1"), ("y", "i1"), ("p", "i1")])
    lip["t"], lip["x"], lip["y"], lip["p"] = t, x % 128, y % 128, p
    np.save(folder / "a.npy", lip)
    return {
        "numpy": (folder / "a.npy").read_bytes(),
        "evt2": (folder / "a.raw").read_bytes(),
        "evt3": evt3,
        "dat": (folder / "a.dat").read_bytes(),
        "atis_bin": b"".join(
            atis_record(int(a) % 34, int(b) % 34, int(c), int(d)) for a, b, c, d in zip(x, y, t, p)
        ),
        "aedat2": aedat2,
        "aedat3": aedat3,
        "aedat4": (folder / "a.aedat4").read_bytes(),
        "mat": (folder / "a.mat").read_bytes(),
    }


_TMP = tempfile.TemporaryDirectory()
SEEDS = _seeds(Path(_TMP.name))

mutation = st.tuples(st.floats(0, 1, allow_nan=False), st.integers(0, 255))


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    if draw(st.booleans()):
        for frac, value in draw(st.lists(mutation, min_size=1, max_size=8)):
            data[min(int(frac * len(data)), len(data) - 1)] = value
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(max_size=32))
    return bytes(data)


def _check(name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("f.aedat4" if name == "aedat4" else "f")
        path.write_bytes(data)
        try:
            rec = READERS[name](path)
        except EventFormatError as exc:
            assert str(path) in str(exc)
            return
        if name in ("evt2", "evt3"):  # the range-free fast path and the range path agree
            np.testing.assert_array_equal(READERS[name](path, start=0).events, rec.events)
        # EVT 3.0 packs at most 12 events into one 2-byte word; every other format is larger.
        assert rec.events.size <= 6 * len(data) + 1
        assert len(rec.sensor_size) == 3


def _text_header_end(data: bytes) -> int:
    pos = 0
    while pos < len(data) and data[pos : pos + 1] in (b"%", b"#"):
        pos = data.index(b"\n", pos) + 1
    return pos


def test_every_reader_is_fuzzed():
    assert sorted(SEEDS) == sorted(READERS)


FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
#: A hang fails the test; 40 examples of at most a few kB take well under a second each.
HANG = pytest.mark.timeout(600)


@HANG
@pytest.mark.parametrize("name", sorted(SEEDS))
def test_fuzz_mutated(name):
    @FUZZ
    @given(mutated(SEEDS[name]))
    def run(data):
        _check(name, data)

    run()


@HANG
@pytest.mark.parametrize("name", sorted(SEEDS))
def test_fuzz_random_bytes_after_valid_header(name):
    seed = SEEDS[name]
    cut = {"aedat4": 18, "mat": 128, "numpy": 128}.get(name, _text_header_end(seed))

    @FUZZ
    @given(st.binary(max_size=512))
    def run(data):
        _check(name, seed[:cut] + data)
        _check(name, data)

    run()


@HANG
def test_fuzz_spike_audio_random_and_truncated(tmp_path):
    from event_writers import write_shd

    from snn.datasets.io import SpikeAudioFile

    write_shd(tmp_path / "s.h5", [[0.1, 0.2], [0.3]], [[1, 2], [3]], [0, 1])
    valid = (tmp_path / "s.h5").read_bytes()

    @FUZZ
    @given(st.one_of(st.binary(max_size=256), st.integers(0, len(valid)).map(lambda n: valid[:n])))
    def run(data):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "f.h5"
            path.write_bytes(data)
            try:
                f = SpikeAudioFile(path)
                for i in range(len(f)):
                    f.read(i)
            except EventFormatError as exc:
                assert str(path) in str(exc)

    run()
