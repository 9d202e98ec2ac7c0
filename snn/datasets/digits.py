"""An offline event dataset: scikit-learn's 8x8 digits seen by an emulated event camera.

N-MNIST (Orchard et al. 2015) was recorded by showing MNIST digits on a monitor to a DVS
camera that moved in three saccades along an isosceles triangle. This module does the same
with the 1797 handwritten digits that ship with scikit-learn, so the whole event pipeline
(events -> frames -> SNN -> accuracy) can be trained and measured without downloading
anything:

1. each 8x8 digit is upsampled bilinearly to ``digit_size`` pixels and drawn on a
   ``sensor x sensor`` canvas whose dark level is ``background`` (a monitor is never black);
2. the digit moves along the triangle ``(0, 0) -> (a/2, a) -> (a, 0) -> (0, 0)`` pixels
   (``a = amplitude_px``), one saccade of ``saccade_us`` per side, rendered with sub-pixel
   bilinear shifts at ``frames_per_saccade`` frames per saccade;
3. :mod:`snn.datasets.emulator` turns the frames into DVS events with per-pixel threshold
   mismatch (one sensor, so one set of thresholds for every sample), a refractory period and
   background noise.

Everything is deterministic given ``seed``; the events are cached in ``root`` as one ``.npz``
file named after a hash of the settings, written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snn.datasets.cache import atomic_save, read_entry, remove_abandoned_temporaries
from snn.datasets.emulator import (
    EVENT_DTYPE,
    PixelState,
    draw_thresholds,
    emulate_pixels,
    pack_events,
    shot_noise,
)

__all__ = [
    "DigitsEvents",
    "SaccadeConfig",
    "load_digit_images",
    "make_digits_events",
    "saccade_frames",
    "split_indices",
    "stratified_split",
]

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class SaccadeConfig:
    """How the digits are shown to the emulated camera.

    Attributes:
        sensor: width and height of the square sensor (34 as in N-MNIST).
        digit_size: size of the upsampled digit (28 as MNIST).
        background: intensity of the dark parts of the screen, in ``(0, 1)``.
        amplitude_px: size of the saccade triangle in pixels.
        saccade_us: duration of one saccade in microseconds.
        frames_per_saccade: rendered frames per saccade (the emulator interpolates between).
        threshold: mean contrast threshold (log intensity).
        threshold_sigma: per-pixel threshold mismatch (standard deviation).
        refractory_us: refractory period of the pixels.
        noise_rate_hz: background noise events per pixel and second.
    """

    sensor: int = 34
    digit_size: int = 28
    background: float = 0.1
    amplitude_px: float = 3.0
    saccade_us: int = 100_000
    frames_per_saccade: int = 20
    threshold: float = 0.25
    threshold_sigma: float = 0.03
    refractory_us: float = 1000.0
    noise_rate_hz: float = 0.2

    def __post_init__(self) -> None:
        if self.digit_size < 8 or self.sensor < self.digit_size + int(np.ceil(self.amplitude_px)):
            raise ValueError(
                f"SaccadeConfig: the digit ({self.digit_size} px) moving by {self.amplitude_px} "
                f"px must fit on the {self.sensor} px sensor, and digit_size must be >= 8"
            )
        if not 0 < self.background < 1:
            raise ValueError(f"SaccadeConfig: background must lie in (0, 1), got {self.background}")
        if self.amplitude_px < 0 or self.saccade_us <= 0 or self.frames_per_saccade < 1:
            raise ValueError(
                "SaccadeConfig: amplitude_px must be >= 0, saccade_us > 0 and "
                "frames_per_saccade >= 1"
            )

    @property
    def sensor_size(self) -> tuple[int, int, int]:
        """``(W, H, 2)`` of the emulated sensor."""
        return (self.sensor, self.sensor, 2)


def _bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``[n_out, n_in]`` matrix of bilinear resampling with pixel centres aligned as in
    ``torch.nn.functional.interpolate(..., align_corners=False)``."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    w = pos - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1 - w
    m[np.arange(n_out), hi] += w
    return m


def _shift(canvas: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Translate ``canvas`` ``[N, H, W]`` by ``(dx, dy) >= 0`` pixels, bilinearly, filling with
    zeros."""
    ix, iy = int(np.floor(dx)), int(np.floor(dy))
    fx, fy = dx - ix, dy - iy
    n, h, w = canvas.shape
    padded = np.zeros((n, h + iy + 1, w + ix + 1))
    padded[:, iy + 1 :, ix + 1 :] = canvas
    a = padded[:, 1 : h + 1, 1 : w + 1]  # shifted by (ix, iy)
    b = padded[:, 1 : h + 1, 0:w]  # by (ix + 1, iy)
    c = padded[:, 0:h, 1 : w + 1]  # by (ix, iy + 1)
    d = padded[:, 0:h, 0:w]  # by (ix + 1, iy + 1)
    return (1 - fx) * (1 - fy) * a + fx * (1 - fy) * b + (1 - fx) * fy * c + fx * fy * d


def saccade_frames(images: np.ndarray, config: SaccadeConfig) -> tuple[np.ndarray, np.ndarray]:
    """Frames of the digits ``images`` ``[N, 8, 8]`` (values in ``[0, 1]``) moving along the
    saccade triangle.

    Returns:
        ``(frames, times)``: intensities ``[F, N, sensor, sensor]`` in ``[background, 1]`` and
        frame times in microseconds ``[F]``, ``F = 3 * frames_per_saccade + 1``.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"images must be [N, h, w], got shape {images.shape}")
    if images.size and (images.min() < 0 or images.max() > 1):
        raise ValueError("images must hold intensities in [0, 1]")
    n, h, w = images.shape
    s = config.digit_size
    big = np.einsum("yh,nhw,xw->nyx", _bilinear_matrix(s, h), images, _bilinear_matrix(s, w))
    canvas = np.zeros((n, config.sensor, config.sensor))
    off = (config.sensor - s - int(np.ceil(config.amplitude_px))) // 2
    canvas[:, off : off + s, off : off + s] = big
    a = config.amplitude_px
    corners = np.array([[0.0, 0.0], [a / 2, a], [a, 0.0], [0.0, 0.0]])
    k = config.frames_per_saccade
    frac = np.arange(k) / k
    path = [corners[i] + (corners[i + 1] - corners[i]) * f for i in range(3) for f in frac]
    path.append(corners[-1])
    frames = np.stack([_shift(canvas, dx, dy) for dx, dy in path])
    frames = config.background + (1 - config.background) * frames
    times = np.arange(len(path)) * (config.saccade_us / k)
    return frames, times


def make_digits_events(
    images: np.ndarray,
    config: SaccadeConfig | None = None,
    seed: int = 0,
    chunk: int = 128,
) -> list[np.ndarray]:
    """Emulated saccade recordings of ``images`` ``[N, 8, 8]`` (values in ``[0, 1]``).

    One sensor records every digit: its per-pixel thresholds are drawn once from ``seed``; each
    recording starts with the sensor adapted to the digit at rest, and the noise of sample ``i``
    comes from its own stream (``seed``, ``i``), so a sample does not depend on which others are
    generated with it.

    Returns:
        one structured event array (``EVENT_DTYPE``, tonic's layout) per image,
        sorted by time.
    """
    config = config or SaccadeConfig()
    rng = np.random.default_rng([seed, 0])
    npx = config.sensor * config.sensor
    c_on = draw_thresholds(rng, npx, config.threshold, config.threshold_sigma, 0.01)
    c_off = draw_thresholds(rng, npx, config.threshold, config.threshold_sigma, 0.01)
    out: list[np.ndarray] = []
    for start in range(0, len(images), chunk):
        batch = images[start : start + chunk]
        frames, times = saccade_frames(batch, config)
        logs = np.log(frames.reshape(frames.shape[0], -1) + 1e-3)
        state = PixelState.start(logs[0], times[0])
        m = len(batch)
        pixel, t, on = emulate_pixels(
            logs[1:], times[1:], state, np.tile(c_on, m), np.tile(c_off, m), config.refractory_us
        )
        sample = pixel // npx
        for j in range(m):
            sel = sample == j
            noise_rng = np.random.default_rng([seed, 1, start + j])
            n_pix, n_t, n_on = shot_noise(
                noise_rng, npx, float(times[0]), float(times[-1]), config.noise_rate_hz
            )
            local = np.concatenate([pixel[sel] - j * npx, n_pix])
            out.append(
                pack_events(
                    local, np.concatenate([t[sel], n_t]), np.r_[on[sel], n_on], config.sensor
                )
            )
    return out


def stratified_split(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Boolean mask of the test samples: ``round(n_c * test_fraction)`` samples of each class
    ``c``, chosen at random by ``rng``.

    Raises:
        ValueError: if ``test_fraction`` is not in ``(0, 1)``.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test[rng.permutation(idx)[: round(len(idx) * test_fraction)]] = True
    return test


def split_indices(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """The digits-event dataset's split: :func:`stratified_split` drawn from ``seed``."""
    return stratified_split(labels, test_fraction, np.random.default_rng([seed, 2]))


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits (shipped with scikit-learn, no download): images
    ``[N, 8, 8]`` scaled from 0-16 to ``[0, 1]`` (float64) and labels ``[N]`` (int64).

    Raises:
        ImportError: with the install command when scikit-learn is missing.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the digits need scikit-learn: pip install 'snn[demo]'") from err
    digits = load_digits()
    return digits.images / 16.0, digits.target.astype(np.int64)


class DigitsEvents:
    """scikit-learn's digits recorded by an emulated event camera in three saccades.

    A map-style dataset (usable with ``torch.utils.data.DataLoader``): item ``i`` is
    ``(events, label)``, or ``(transform(events), target_transform(label))``. The events are
    structured arrays with fields ``x, y, t, p`` on a :attr:`sensor_size` ``(34, 34, 2)``
    sensor, ``t`` in microseconds over about 300 ms.

    Args:
        root: folder for the cache file (created if missing); ``None`` generates in memory.
        train: the training split (``False``: the test split).
        seed: seed of the sensor, the noise and the split.
        test_fraction: fraction of each class held out for testing.
        config: how the digits are shown to the camera.
        transform: applied to the events of each sample.
        target_transform: applied to each label.
    """

    classes = tuple(range(10))

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        train: bool = True,
        *,
        seed: int = 0,
        test_fraction: float = 0.25,
        config: SaccadeConfig | None = None,
        transform: Callable[[np.ndarray], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
    ):
        self.config = config or SaccadeConfig()
        self.seed = int(seed)
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        events, offsets, labels = self._events(root)
        test = split_indices(labels, test_fraction, self.seed)
        self._index = np.flatnonzero(~test if self.train else test)
        self._events_all, self._offsets, self._labels = events, offsets, labels

    @property
    def sensor_size(self) -> tuple[int, int, int]:
        """``(W, H, 2)``."""
        return self.config.sensor_size

    def cache_name(self) -> str:
        """File name of the cache: a hash of the format version, the seed and the settings."""
        key = json.dumps(
            {"v": _FORMAT_VERSION, "seed": self.seed, **dataclasses.asdict(self.config)},
            sort_keys=True,
        )
        return f"digits_events_{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"

    def _events(self, root: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        path = None if root is None else Path(root) / self.cache_name()
        if path is not None and path.is_file():
            # An unreadable cache file (a writer killed mid-write, bit flips) is named in a
            # CacheWarning, removed and rebuilt.
            entry = read_entry(path, ("events", "offsets", "labels"))
            if entry is not None:
                return entry["events"], entry["offsets"], entry["labels"]
        images, labels = load_digit_images()
        recordings = make_digits_events(images, self.config, self.seed)
        offsets = np.zeros(len(recordings) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(r) for r in recordings])
        events = np.concatenate(recordings) if recordings else np.empty(0, EVENT_DTYPE)
        if path is not None:
            remove_abandoned_temporaries(path.parent, f".{path.name}.*.tmp")
            atomic_save(path, events=events, offsets=offsets, labels=labels)
        return events, offsets, labels

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"DigitsEvents index {i} out of range for {len(self)} samples")
        j = self._index[i]
        events = self._events_all[self._offsets[j] : self._offsets[j + 1]]
        label = int(self._labels[j])
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return events, label

    @property
    def targets(self) -> np.ndarray:
        """Labels of this split, in item order."""
        return self._labels[self._index]
