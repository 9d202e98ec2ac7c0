"""Readers on real sensor recordings: counts and ranges from the recordings' provenance notes."""

from __future__ import annotations

import numpy as np
import pytest

from snn.datasets.io import EVENT_DTYPE, READERS, detect_format, read_events

# file, format, reader kwargs, events, x range, y range, t range, ON count (None: +1/-1 file)
EXPECTED = [
    (
        "nmnist_sample.bin",
        "atis_bin",
        {"sensor_size": (34, 34, 2)},
        4325,
        (0, 33),
        (0, 33),
        (654, 311175),
        2145,
    ),
    ("ncars_sample_td.dat", "dat", {}, 2009, (0, 77), (0, 41), (0, 99952), 1350),
    (
        "gen4_pedestrians_evt3.raw",
        "evt3",
        {},
        5000,
        (11, 1279),
        (22, 698),
        (5840504, 5885714),
        2894,
    ),
    ("gen3_sample_evt2.raw", "evt2", {}, 539481, (60, 599), (18, 475), (1317888, 1367888), 367855),
    (
        "dvxplorer_sample.aedat4",
        "aedat4",
        {},
        111954,
        (0, 319),
        (0, 239),
        (1605537493718345, 1605537494308262),
        55023,
    ),
    ("dvs128_building.mat", "mat", {}, 115839, (0, 127), (0, 127), (0, 1100005), None),
]
SENSORS = {
    "gen4_pedestrians_evt3.raw": (1280, 720, 2),
    "gen3_sample_evt2.raw": (640, 480, 2),
    "dvxplorer_sample.aedat4": (320, 240, 2),
    "nmnist_sample.bin": (34, 34, 2),
}


@pytest.mark.parametrize(("name", "fmt", "kw", "n", "xr", "yr", "tr", "on"), EXPECTED)
def test_fixture_counts_and_ranges(fixtures_dir, name, fmt, kw, n, xr, yr, tr, on):
    path = fixtures_dir / name
    assert detect_format(path) == fmt
    rec = READERS[fmt](path, **kw)
    ev = rec.events
    assert ev.dtype == EVENT_DTYPE
    assert ev.size == n
    assert (ev["x"].min(), ev["x"].max()) == xr
    assert (ev["y"].min(), ev["y"].max()) == yr
    assert (ev["t"].min(), ev["t"].max()) == tr
    if on is not None:
        assert int(ev["p"].sum()) == on
    if name in SENSORS:
        assert rec.sensor_size == SENSORS[name]


def test_mat_polarity_split(fixtures_dir):
    import scipy.io

    raw = scipy.io.loadmat(fixtures_dir / "dvs128_building.mat")["events"]
    ev = read_events(fixtures_dir / "dvs128_building.mat").events
    assert int(ev["p"].sum()) == int((raw[:, 2] == 1).sum())
    np.testing.assert_array_equal(ev["t"], raw[:, 3])
    np.testing.assert_array_equal(ev["x"], raw[:, 0])


def test_davis_header_only(fixtures_dir):
    rec = read_events(fixtures_dir / "davis346_header_only.aedat")
    assert rec.events.size == 0
    assert rec.sensor_size == (346, 260, 2)
    assert rec.header["layout"] == "davis"


def test_evt3_time_is_monotonic_without_spurious_jumps(fixtures_dir):
    t = read_events(fixtures_dir / "gen4_pedestrians_evt3.raw").events["t"]
    assert np.all(np.diff(t) >= 0)
    # 5000 events in 45 ms: no gap may approach a 4096 us time-low wrap
    assert np.diff(t).max() < 4096


RANGE_FILES = [e[0] for e in EXPECTED]


@pytest.mark.parametrize("name", RANGE_FILES)
def test_index_and_time_ranges_match_full_decode(fixtures_dir, name):
    kw = next(e[2] for e in EXPECTED if e[0] == name)
    path = fixtures_dir / name
    full = read_events(path, **kw).events
    n = full.size
    a, b = n // 5, n // 2
    np.testing.assert_array_equal(read_events(path, start=a, stop=b, **kw).events, full[a:b])
    np.testing.assert_array_equal(read_events(path, stop=7, **kw).events, full[:7])
    t0 = int(full["t"][n // 3])
    t1 = int(full["t"][2 * n // 3]) + 1
    sel = full[(full["t"] >= t0) & (full["t"] < t1)]
    got = read_events(path, t_start=t0, t_end=t1, **kw).events
    np.testing.assert_array_equal(got, sel)
    both = read_events(path, start=a, stop=b, t_start=t0, t_end=t1, **kw).events
    part = full[a:b]
    np.testing.assert_array_equal(both, part[(part["t"] >= t0) & (part["t"] < t1)])
