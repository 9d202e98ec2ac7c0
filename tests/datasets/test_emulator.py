"""The event-camera emulator against scenes whose events can be counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from snn.datasets.emulator import EVENT_DTYPE, EventEmulator

EPS = 1e-3


def _frames_from_log(levels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Uniform frames whose log intensity ln(I + eps) is exactly ``levels``."""
    return (np.exp(levels) - EPS)[:, None, None] * np.ones((1, *shape))


def test_event_layout_is_tonics() -> None:
    tonic_io = pytest.importorskip("tonic.io")
    assert tonic_io.events_struct == EVENT_DTYPE
    emu = EventEmulator((5, 4), seed=0)
    assert emu.sensor_size == (5, 4, 2)
    ev = emu(np.random.default_rng(0).random((3, 4, 5)), np.arange(3) * 10.0)
    assert ev.dtype == EVENT_DTYPE


def test_uniform_ramp_up_then_down_gives_hand_counted_events() -> None:
    # log intensity 0 -> 1.05 in 10 steps of 1 ms, then down to -0.05 in 11 steps; C = 0.2.
    levels = np.r_[np.linspace(0, 1.05, 11), np.linspace(1.05, -0.05, 12)[1:]]
    times = np.arange(len(levels)) * 1000.0
    emu = EventEmulator((4, 3), threshold=0.2, threshold_sigma=0.0, log_eps=EPS, seed=0)
    ev = emu(_frames_from_log(levels, (3, 4)), times)
    assert len(ev) == 12 * 10  # 5 ON + 5 OFF per pixel
    for x in range(4):
        for y in range(3):
            px = ev[(ev["x"] == x) & (ev["y"] == y)]
            assert px["p"].tolist() == [True] * 5 + [False] * 5
            # ON crossings at L = 0.2k on a slope of 0.105 per ms; OFF at L = 1 - 0.2k
            # from 1.05 at 10 ms on a slope of -0.1 per ms.
            on_t = [0.2 * k / 0.105 * 1000 for k in range(1, 6)]
            off_t = [10000 + (1.05 - (1.0 - 0.2 * k)) / 0.1 * 1000 for k in range(1, 6)]
            np.testing.assert_allclose(px["t"], np.floor(on_t + off_t), atol=1)
    assert np.all(np.diff(ev["t"]) >= 0)


def test_moving_bar_gives_on_events_at_leading_and_off_at_trailing_edge() -> None:
    width, bar = 20, 4
    frames = np.full((16, 1, width), 0.1)
    for f in range(16):
        frames[f, 0, f : f + bar] = 1.0
    times = np.arange(16) * 1000.0
    emu = EventEmulator((width, 1), threshold=0.2, threshold_sigma=0.0, log_eps=EPS, seed=0)
    ev = emu(frames, times)
    per_step = int(np.log((1 + EPS) / (0.1 + EPS)) / 0.2)  # 11 events per brightness step
    for x in range(width):
        px = ev[ev["x"] == x]
        on, off = px[px["p"]], px[~px["p"]]
        # pixels 0..3 start bright; the bar front reaches pixel x at frame x - 3 (x <= 18)
        assert len(on) == (per_step if 4 <= x <= 18 else 0), x
        if len(on):
            assert np.all((on["t"] >= (x - 4) * 1000) & (on["t"] <= (x - 3) * 1000))
        # the bar's back leaves pixel x at frame x + 1 (up to the last frame, 15); the last
        # OFF level is the dark level itself, reached at the end of the interval
        assert len(off) == (per_step if x <= 14 else 0), x
        if len(off):
            assert np.all((off["t"] >= x * 1000) & (off["t"] <= (x + 1) * 1000))


def test_threshold_mismatch_sets_each_pixels_count() -> None:
    emu = EventEmulator(
        (16, 8), threshold=0.2, threshold_off=0.3, threshold_sigma=0.05, log_eps=EPS, seed=3
    )
    c_on, c_off = emu.thresholds()
    assert c_on.std() > 0.02 and abs(c_on.mean() - 0.2) < 0.02 and abs(c_off.mean() - 0.3) < 0.02
    up = np.log((1 + EPS) / (0.1 + EPS))
    frames = np.stack([np.full((8, 16), 0.1), np.ones((8, 16)), np.full((8, 16), 0.1)])
    ev = emu(frames, np.array([0.0, 1000.0, 2000.0]))
    counts_on = np.zeros((8, 16), int)
    counts_off = np.zeros((8, 16), int)
    np.add.at(counts_on, (ev["y"][ev["p"]], ev["x"][ev["p"]]), 1)
    np.add.at(counts_off, (ev["y"][~ev["p"]], ev["x"][~ev["p"]]), 1)
    np.testing.assert_array_equal(counts_on, np.floor(up / c_on))
    # after the ON events each reference sits at 0.1's level + n_on * C_on; the way down
    # crosses floor((ref - L_low) / C_off) OFF levels.
    ref = np.log(0.1 + EPS) + np.floor(up / c_on) * c_on
    np.testing.assert_array_equal(counts_off, np.floor((ref - np.log(0.1 + EPS)) / c_off))
    assert counts_on.std() > 0  # the mismatch shows in the counts


def test_refractory_period_golden_trace() -> None:
    # L rises 0 -> 2.05 in 1 ms (0.00205 per us), then stays; C = 0.2, refractory 250 us.
    levels = np.array([0.0, 2.05, 2.05])
    times = np.array([0.0, 1000.0, 2000.0])
    frames = _frames_from_log(levels, (1, 1))
    free = EventEmulator((1, 1), threshold=0.2, threshold_sigma=0.0, log_eps=EPS, seed=0)
    np.testing.assert_allclose(
        free(frames, times)["t"], np.floor([0.2 * k / 0.00205 for k in range(1, 11)]), atol=1
    )
    emu = EventEmulator(
        (1, 1), threshold=0.2, threshold_sigma=0.0, refractory_us=250, log_eps=EPS, seed=0
    )
    ev = emu(frames, times)
    # event at L = 0.2; blind until +250 us, then the reference is L there and the next event
    # comes 0.2 higher; the third event's blind time ends in the flat second interval.
    t1 = 0.2 / 0.00205
    t2 = t1 + 250 + 0.2 / 0.00205
    t3 = t2 + 250 + 0.2 / 0.00205
    np.testing.assert_allclose(ev["t"], np.floor([t1, t2, t3]), atol=1)
    assert ev["p"].all()
    assert np.all(np.diff(ev["t"]) >= 250)


def test_background_noise_rate_and_polarity() -> None:
    emu = EventEmulator((32, 32), threshold_sigma=0.0, noise_rate_hz=10.0, seed=1)
    frames = np.full((11, 32, 32), 0.5)
    ev = emu(frames, np.arange(11) * 100_000.0)  # a static scene for 1 s
    expected = 10.0 * 32 * 32 * 1.0
    assert abs(len(ev) - expected) < 5 * np.sqrt(expected)
    assert abs(ev["p"].mean() - 0.5) < 0.05
    assert ev["t"].min() >= 0 and ev["t"].max() <= 1_000_000
    quiet = EventEmulator((32, 32), threshold_sigma=0.0, seed=1)
    assert len(quiet(frames, np.arange(11) * 100_000.0)) == 0


def test_chunks_continue_exactly_and_seed_is_deterministic() -> None:
    rng = np.random.default_rng(5)
    frames = rng.random((30, 6, 7)) + 0.05
    times = np.cumsum(rng.uniform(100, 2000, 30))
    whole = EventEmulator((7, 6), refractory_us=300, seed=11)(frames, times)
    chunked = EventEmulator((7, 6), refractory_us=300, seed=11)
    parts = [chunked(frames[i : i + 7], times[i : i + 7]) for i in range(0, 30, 7)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    again = EventEmulator((7, 6), refractory_us=300, seed=11)(frames, times)
    np.testing.assert_array_equal(again, whole)
    other = EventEmulator((7, 6), refractory_us=300, seed=12)(frames, times)
    assert len(other) != len(whole) or not np.array_equal(other, whole)


@pytest.mark.parametrize(
    ("frames", "times", "match"),
    [
        (np.ones((3, 4, 5)), np.arange(3.0), "sensor"),
        (np.ones((3, 3, 5)), np.arange(2.0), "one time per frame"),
        (-np.ones((3, 3, 5)), np.arange(3.0), "non-negative"),
        (np.ones((3, 3, 5)), np.array([0.0, 2.0, 1.0]), "increasing"),
        (np.ones((3, 5)), np.arange(3.0), r"\[N, H, W\]"),
    ],
)
def test_bad_input_raises(frames: np.ndarray, times: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EventEmulator((5, 3), seed=0)(frames, times)


def test_bad_settings_and_time_going_back_raise() -> None:
    with pytest.raises(ValueError, match="sensor_size"):
        EventEmulator((5, 3, 1))
    with pytest.raises(ValueError, match="threshold"):
        EventEmulator((5, 3), threshold=0.0)
    with pytest.raises(ValueError, match="refractory"):
        EventEmulator((5, 3), refractory_us=-1)
    emu = EventEmulator((5, 3), seed=0)
    emu(np.ones((2, 3, 5)), np.array([0.0, 10.0]))
    with pytest.raises(ValueError, match="continue after"):
        emu(np.ones((1, 3, 5)), np.array([5.0]))
    emu.reset()
    assert len(emu(np.ones((1, 3, 5)), np.array([5.0]))) == 0
