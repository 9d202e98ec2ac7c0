"""Transforms: frames and voxel grids equal tonic's; denoise against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import tonic
import tonic.transforms as TT
from hypothesis import given, settings
from hypothesis import strategies as st

from snn.datasets.io import AUDIO_DTYPE, make_events, read_events
from snn.datasets.transforms import (
    CenterCrop,
    Compose,
    Crop,
    Denoise,
    Downsample,
    TimeRange,
    TimeShift,
    ToFrame,
    ToVoxelGrid,
    slice_events,
    to_frame,
)


def random_events(n=3000, size=(34, 26, 2), t_max=100_000, seed=0):
    rng = np.random.default_rng(seed)
    return make_events(
        rng.integers(0, size[0], n),
        rng.integers(0, size[1], n),
        np.sort(rng.integers(0, t_max, n)),
        rng.integers(0, size[2], n),
    )


FRAME_PARAMS = [
    dict(time_window=1000),
    dict(time_window=7000, overlap=2500),
    dict(time_window=7000, overlap=2500, include_incomplete=True),
    dict(time_window=5000, start_time=-3000, end_time=120_000, include_incomplete=True),
    dict(time_window=200_000),
    dict(event_count=400),
    dict(event_count=400, overlap=150, include_incomplete=True),
    dict(event_count=10_000),
    dict(n_time_bins=1),
    dict(n_time_bins=9, overlap=0.25),
    dict(n_event_bins=5),
    dict(n_event_bins=6, overlap=0.5),
]


@pytest.mark.parametrize("params", FRAME_PARAMS, ids=lambda p: str(p))
def test_to_frame_equals_tonic(params):
    ev = random_events()
    size = (34, 26, 2)
    ours = ToFrame(sensor_size=size, **params)(ev)
    ref = TT.ToFrame(sensor_size=size, **params)(ev.copy())
    assert ours.dtype == ref.dtype == np.int16
    np.testing.assert_array_equal(ours, ref)


def test_to_frame_equals_tonic_on_recording(fixtures_dir):
    ev = read_events(fixtures_dir / "gen3_sample_evt2.raw").events[:60_000]
    for params in (dict(time_window=2000, overlap=500), dict(n_event_bins=4)):
        ours = ToFrame(sensor_size=(640, 480, 2), **params)(ev)
        ref = TT.ToFrame(sensor_size=(640, 480, 2), **params)(ev.copy())
        np.testing.assert_array_equal(ours, ref)


def test_to_frame_audio_and_inferred_size():
    rng = np.random.default_rng(3)
    ev = np.zeros(500, dtype=AUDIO_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 1_000_000, 500))
    ev["x"] = rng.integers(0, 700, 500)
    ev["p"] = 1
    ours = to_frame(ev, (700, 1, 1), n_time_bins=20)
    ref = TT.ToFrame(sensor_size=(700, 1, 1), n_time_bins=20)(ev.copy())
    assert ours.shape == (20, 1, 700)
    np.testing.assert_array_equal(ours, ref)
    ev2 = random_events(size=(10, 7, 2))
    np.testing.assert_array_equal(
        to_frame(ev2, None, event_count=100), TT.ToFrame(None, event_count=100)(ev2.copy())
    )


def test_to_frame_golden_counts():
    ev = make_events([0, 0, 1, 1], [0, 0, 1, 1], [0, 5, 10, 15], [1, 1, 0, 1])
    f = to_frame(ev, (2, 2, 2), time_window=10, include_incomplete=True)
    assert f.shape == (2, 2, 2, 2)
    assert f[0, 1, 0, 0] == 2 and f[0].sum() == 2
    assert f[1, 0, 1, 1] == 1 and f[1, 1, 1, 1] == 1 and f[1].sum() == 2


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    n=st.integers(1, 300),
    seed=st.integers(0, 10_000),
    method=st.sampled_from(["time_window", "event_count", "n_time_bins", "n_event_bins"]),
    value=st.integers(1, 50),
    frac=st.floats(0, 0.9),
    incomplete=st.booleans(),
)
def test_to_frame_matches_tonic_property(n, seed, method, value, frac, incomplete):
    ev = random_events(n=n, size=(5, 4, 2), t_max=2000, seed=seed)
    if method == "time_window":
        params = dict(time_window=value * 40, overlap=int(frac * value * 40))
    elif method == "event_count":
        params = dict(event_count=value, overlap=int(frac * value))
    else:
        params = {method: min(value, 12), "overlap": frac}
    if method in ("time_window", "event_count"):
        params["include_incomplete"] = incomplete
    ours = to_frame(ev, (5, 4, 2), **params)
    ref = TT.ToFrame(sensor_size=(5, 4, 2), **params)(ev.copy())
    np.testing.assert_array_equal(ours, ref)


def test_to_frame_errors():
    ev = make_events([0, 5], [0, 0], [0, 1], [0, 1])
    with pytest.raises(ValueError, match=r"event 1 \(x=5"):
        to_frame(ev, (5, 4, 2), event_count=2)
    with pytest.raises(ValueError, match="exactly one"):
        to_frame(ev, (6, 4, 2), time_window=10, event_count=3)
    with pytest.raises(ValueError, match="overlap"):
        to_frame(ev, (6, 4, 2), time_window=10, overlap=10)
    with pytest.raises(ValueError, match="one polarity"):
        to_frame(ev, (6, 4, 1), n_time_bins=1)
    many = make_events(np.zeros(200), np.zeros(200), np.arange(200), np.ones(200))
    with pytest.raises(ValueError, match="int8"):
        to_frame(many, (1, 1, 2), n_time_bins=1, dtype=np.int8)
    assert to_frame(many, (1, 1, 2), n_time_bins=1, dtype=np.int32)[0, 1, 0, 0] == 199


def test_voxel_grid_equals_tonic():
    # tonic's voxel grid maps OFF to -1 by assigning into ``p``, which only works for an integer
    # polarity field (a bool field stays True), so both get int8 polarities here.
    base = random_events(size=(20, 15, 2))
    ev = np.empty(base.size, dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "i1")])
    for k in ("x", "y", "t", "p"):
        ev[k] = base[k]
    ours = ToVoxelGrid(sensor_size=(20, 15, 2), n_time_bins=7)(ev)
    before = ev.copy()
    ref = TT.ToVoxelGrid(sensor_size=(20, 15, 2), n_time_bins=7)(ev.copy())
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ev, before)  # input untouched
    np.testing.assert_allclose(ToVoxelGrid((20, 15, 2), 7)(base), ours, rtol=1e-12)


def denoise_reference(ev, size, filter_time):
    keep = []
    for j, e in enumerate(ev):
        ok = False
        for k in range(j):
            o = ev[k]
            adjacent = abs(int(o["x"]) - int(e["x"])) + abs(int(o["y"]) - int(e["y"])) == 1
            if adjacent and o["t"] + filter_time > e["t"]:
                ok = True
        keep.append(ok)
    return ev[np.array(keep, dtype=bool)]


def test_denoise_matches_definition():
    ev = random_events(n=400, size=(8, 6, 2), t_max=40_000, seed=5)
    ours = Denoise(sensor_size=(8, 6, 2), filter_time=1500, history_start=None)(ev)
    np.testing.assert_array_equal(ours, denoise_reference(ev, (8, 6, 2), 1500))
    assert 0 < ours.size < ev.size


def test_denoise_history_start_counts_as_an_event_at_every_pixel():
    ev = make_events([1, 3, 3, 5], [1, 1, 2, 5], [100, 2500, 2600, 2700], [1, 0, 1, 0])
    size = (8, 8, 2)
    # tonic's rule (the default): every pixel fired at t = 0, so t < filter_time is kept
    assert Denoise(size, 2000)(ev)["t"].tolist() == [100, 2600]
    assert Denoise(size, 2000, history_start=None)(ev)["t"].tolist() == [2600]
    assert Denoise(size, 2000, history_start=600)(ev)["t"].tolist() == [100, 2500, 2600]
    with pytest.raises(ValueError, match="history_start must be an integer"):
        Denoise(size, 2000, history_start=0.5)(ev)


def test_denoise_equals_tonic_on_synthetic_events():
    for seed, start in [(2, 0), (3, 1000), (4, 50_000)]:
        ev = random_events(n=2000, size=(16, 16, 2), t_max=200_000, seed=seed)
        ev["t"] += start
        for filter_time in (700, 3000, 2500.5):
            ours = Denoise(sensor_size=(16, 16, 2), filter_time=filter_time)(ev)
            ref = TT.Denoise(filter_time=filter_time)(ev.copy())
            np.testing.assert_array_equal(ours, ref)


RECORDINGS = [
    "nmnist_sample.bin",
    "ncars_sample_td.dat",
    "gen4_pedestrians_evt3.raw",
    "dvs128_building.mat",
]


@pytest.mark.parametrize("name", RECORDINGS)
def test_denoise_and_downsample_equal_tonic_on_real_recordings(fixtures_dir, name):
    rec = read_events(fixtures_dir / name)
    ev = rec.events[:8000]
    for filter_time in (1000, 10_000):
        ours = Denoise(rec.sensor_size, filter_time)(ev)
        ref = TT.Denoise(filter_time=filter_time)(ev.copy())
        np.testing.assert_array_equal(ours, ref)
        assert 0 < ours.size < ev.size
    for kwargs in (
        dict(spatial_factor=0.5),
        dict(spatial_factor=(0.25, 0.5), time_factor=0.001),
        dict(sensor_size=rec.sensor_size, target_size=(20, 10)),
    ):
        ours = Downsample(**kwargs)(ev)
        np.testing.assert_array_equal(ours, TT.Downsample(**kwargs)(ev.copy()))
        size = Downsample(**kwargs).sensor_size_after(rec.sensor_size)
        assert ours["x"].max() < size[0] and ours["y"].max() < size[1]


def test_spatial_and_time_transforms_golden():
    ev = make_events([0, 3, 7, 9], [1, 2, 5, 9], [100, 200, 300, 400], [1, 0, 1, 0])
    d = Downsample(spatial_factor=0.5, time_factor=0.01)(ev)
    assert d["x"].tolist() == [0, 1, 3, 4] and d["y"].tolist() == [0, 1, 2, 4]
    assert d["t"].tolist() == [1, 2, 3, 4]
    assert Downsample(spatial_factor=1 / 3).sensor_size_after((10, 10, 2)) == (4, 4, 2)
    assert Downsample(spatial_factor=0.5).sensor_size_after((34, 34, 2)) == (17, 17, 2)
    with pytest.raises(ValueError, match="multiply coordinates"):
        Downsample(spatial_factor=0)(ev)
    with pytest.raises(ValueError, match="target_size needs sensor_size"):
        Downsample(target_size=(5, 5))(ev)
    c = Crop(left=2, top=1, width=6, height=5)(ev)
    assert list(zip(c["x"].tolist(), c["y"].tolist())) == [(1, 1), (5, 4)]
    cc = CenterCrop(sensor_size=(10, 10, 2), size=(6, 6))(ev)
    assert list(zip(cc["x"].tolist(), cc["y"].tolist())) == [(1, 0), (5, 3)]
    assert TimeRange(150, 400)(ev)["t"].tolist() == [200, 300]
    assert TimeShift()(ev)["t"].tolist() == [0, 100, 200, 300]
    assert ev["x"].tolist() == [0, 3, 7, 9]  # inputs untouched


def test_compose_mixes_tonic_transforms():
    ev = random_events(size=(34, 26, 2))
    ours = Compose([TT.Downsample(spatial_factor=0.5), ToFrame((17, 13, 2), n_time_bins=4)])(ev)
    ref = TT.Compose([TT.Downsample(spatial_factor=0.5), TT.ToFrame((17, 13, 2), n_time_bins=4)])(
        ev.copy()
    )
    np.testing.assert_array_equal(ours, ref)
    assert tonic.__version__


def test_slice_events_views():
    ev = random_events(n=100)
    parts = slice_events(ev, event_count=30, overlap=10, include_incomplete=True)
    assert [p.size for p in parts] == [30, 30, 30, 30, 20]
    np.testing.assert_array_equal(parts[1], ev[20:50])
