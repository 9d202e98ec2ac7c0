"""The saccade event dataset built from scikit-learn's digits."""

from __future__ import annotations

import numpy as np
import pytest

from snn.datasets.digits import (
    DigitsEvents,
    SaccadeConfig,
    make_digits_events,
    saccade_frames,
    split_indices,
)
from snn.datasets.emulator import EVENT_DTYPE

pytest.importorskip("sklearn")

FAST = SaccadeConfig(frames_per_saccade=6)


def _digits(n: int) -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().images[:n] / 16.0


def test_saccade_frames_follow_the_triangle() -> None:
    img = np.zeros((1, 8, 8))
    img[0, 4, 4] = 1.0  # one bright pixel; its upsampled centroid must move along the path
    cfg = SaccadeConfig(frames_per_saccade=4, amplitude_px=3.0, background=0.1)
    frames, times = saccade_frames(img, cfg)
    assert frames.shape == (13, 1, 34, 34)
    np.testing.assert_allclose(times, np.arange(13) * 25_000)
    assert frames.min() >= 0.1 - 1e-12 and frames.max() <= 1 + 1e-12
    w = frames[:, 0] - 0.1
    ys, xs = np.mgrid[0:34, 0:34]
    cx = (w * xs).sum((1, 2)) / w.sum((1, 2))
    cy = (w * ys).sum((1, 2)) / w.sum((1, 2))
    dx, dy = cx - cx[0], cy - cy[0]
    np.testing.assert_allclose([dx[4], dy[4]], [1.5, 3.0], atol=1e-9)  # first corner
    np.testing.assert_allclose([dx[8], dy[8]], [3.0, 0.0], atol=1e-9)  # second corner
    np.testing.assert_allclose([dx[12], dy[12]], [0.0, 0.0], atol=1e-9)  # back home
    np.testing.assert_allclose([dx[2], dy[2]], [0.75, 1.5], atol=1e-9)  # sub-pixel midway


def test_events_are_deterministic_and_independent_of_chunking() -> None:
    images = _digits(5)
    a = make_digits_events(images, FAST, seed=3, chunk=2)
    b = make_digits_events(images, FAST, seed=3, chunk=128)
    assert len(a) == 5
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
    c = make_digits_events(images, FAST, seed=4)
    assert any(len(x) != len(y) or not np.array_equal(x, y) for x, y in zip(a, c))


def test_events_lie_on_the_sensor_and_in_time() -> None:
    for ev in make_digits_events(_digits(4), FAST, seed=0):
        assert ev.dtype == EVENT_DTYPE
        assert 1000 < len(ev) < 20000
        assert ev["x"].min() >= 0 and ev["x"].max() < 34
        assert ev["y"].min() >= 0 and ev["y"].max() < 34
        assert ev["t"].min() >= 0 and ev["t"].max() <= 300_000
        assert np.all(np.diff(ev["t"]) >= 0)
        assert 0.3 < ev["p"].mean() < 0.7  # a closed saccade loop: as many ON as OFF


def test_blank_image_and_still_camera_give_no_signal_events() -> None:
    quiet = SaccadeConfig(frames_per_saccade=6, noise_rate_hz=0.0)
    blank, digit = np.zeros((1, 8, 8)), _digits(1)
    assert len(make_digits_events(blank, quiet)[0]) == 0
    still = SaccadeConfig(frames_per_saccade=6, noise_rate_hz=0.0, amplitude_px=0.0)
    assert len(make_digits_events(digit, still)[0]) == 0
    assert len(make_digits_events(digit, quiet)[0]) > 0


def test_split_is_stratified_and_disjoint() -> None:
    labels = np.repeat(np.arange(10), 20)
    test = split_indices(labels, 0.25, seed=0)
    assert test.sum() == 50
    for c in range(10):
        assert test[labels == c].sum() == 5
    assert not np.array_equal(test, split_indices(labels, 0.25, seed=1))
    with pytest.raises(ValueError, match="test_fraction"):
        split_indices(labels, 1.0, 0)


def test_bad_config_raises() -> None:
    with pytest.raises(ValueError, match="fit"):
        SaccadeConfig(sensor=28, digit_size=28, amplitude_px=3)
    with pytest.raises(ValueError, match="background"):
        SaccadeConfig(background=0.0)


@pytest.mark.slow
def test_dataset_splits_cache_and_transforms(tmp_path) -> None:
    train = DigitsEvents(tmp_path, train=True, seed=0)
    files = list(tmp_path.glob("digits_events_*.npz"))
    assert [f.name for f in files] == [train.cache_name()]
    test = DigitsEvents(tmp_path, train=False, seed=0, transform=len, target_transform=str)
    assert len(train) + len(test) == 1797 and len(test) == 450
    assert train.sensor_size == (34, 34, 2)
    ev, label = train[0]
    assert ev.dtype == EVENT_DTYPE and isinstance(label, int)
    n, label_str = test[0]
    assert isinstance(n, int) and n > 0 and isinstance(label_str, str)
    assert np.bincount(test.targets, minlength=10).min() >= 17
    again = DigitsEvents(tmp_path, train=True, seed=0)  # loaded from the cache
    np.testing.assert_array_equal(again[5][0], train[5][0])
    with pytest.raises(IndexError):
        train[len(train)]
