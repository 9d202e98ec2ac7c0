r"""Event-camera emulator: ordinary image sequences in, DVS events out.

A dynamic vision sensor (DVS) pixel reports a change of log intensity. Each pixel keeps a
reference level :math:`L_\text{ref}` and emits an ON event when the log intensity
:math:`L = \ln(I + \varepsilon)` has risen by its ON threshold :math:`C^+`, or an OFF event when
it has fallen by its OFF threshold :math:`C^-`:

.. math::
    L(t) - L_\text{ref} \ge C^+_{xy} \Rightarrow \text{ON}, \qquad
    L_\text{ref} - L(t) \ge C^-_{xy} \Rightarrow \text{OFF}.

Between two frames the log intensity of every pixel is interpolated linearly in time, so a
change of :math:`k` thresholds within one frame interval gives :math:`k` events at the times the
interpolated signal crosses the levels :math:`L_\text{ref} \pm C, \pm 2C, \dots` (as in ESIM,
Rebecq et al. 2018).

Non-idealities of real sensors (Lichtsteiner et al. 2008; v2e, Hu et al. 2021):

- **threshold mismatch**: every pixel draws its own :math:`C^+` and :math:`C^-` from a normal
  distribution (mean ``threshold``, standard deviation ``threshold_sigma``), floored at
  ``min_threshold``;
- **refractory period**: after an event the pixel is blind for ``refractory_us``; its reset
  switch releases at the end of that period and the reference becomes the log intensity at that
  moment, so the change during the blind time produces no events. With a zero refractory period
  the reference simply moves by one threshold per event;
- **background noise**: shot-noise events at ``noise_rate_hz`` per pixel (Poisson in time,
  uniform over pixels, random polarity), independent of the signal; they leave the reference
  unchanged.

Events are numpy structured arrays in tonic's layout (:data:`EVENT_DTYPE`: ``x, y`` int16,
``t`` int64 microseconds, ``p`` bool with ``True`` = ON) and the sensor size is ``(W, H, 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snn.datasets._events import EVENT_DTYPE

__all__ = [
    "EVENT_DTYPE",
    "EventEmulator",
    "PixelState",
    "draw_thresholds",
    "emulate_pixels",
    "pack_events",
    "shot_noise",
]


@dataclass
class PixelState:
    """State of a flat array of ``P`` pixels between frames.

    Attributes:
        ref: reference log intensity of each pixel ``[P]``.
        release: time (us) at which a blind pixel's reference is reset ``[P]``.
        blind: whether the pixel is inside its refractory period ``[P]``.
        last_log: log intensity of the last frame seen ``[P]``.
        last_time: time (us) of the last frame seen.
    """

    ref: np.ndarray
    release: np.ndarray
    blind: np.ndarray
    last_log: np.ndarray
    last_time: float

    @classmethod
    def start(cls, log_frame: np.ndarray, time: float) -> PixelState:
        """Pixels that have just seen ``log_frame`` at ``time`` (no events yet)."""
        log_frame = np.asarray(log_frame, dtype=np.float64)
        return cls(
            ref=log_frame.copy(),
            release=np.full(log_frame.shape, -np.inf),
            blind=np.zeros(log_frame.shape, dtype=bool),
            last_log=log_frame.copy(),
            last_time=float(time),
        )


def draw_thresholds(
    rng: np.random.Generator,
    num_pixels: int,
    threshold: float,
    sigma: float,
    min_threshold: float,
) -> np.ndarray:
    """Per-pixel contrast thresholds: ``normal(threshold, sigma)`` floored at ``min_threshold``.

    Raises:
        ValueError: for a non-positive ``threshold``/``min_threshold`` or a negative ``sigma``.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be positive (log-intensity units), got {threshold}")
    if not sigma >= 0:
        raise ValueError(f"threshold_sigma must be >= 0, got {sigma}")
    if not min_threshold > 0:
        raise ValueError(f"min_threshold must be positive, got {min_threshold}")
    if sigma == 0:
        return np.full(num_pixels, float(threshold))
    return np.maximum(rng.normal(threshold, sigma, num_pixels), min_threshold)


def emulate_pixels(
    log_frames: np.ndarray,
    times: np.ndarray,
    state: PixelState,
    c_on: np.ndarray,
    c_off: np.ndarray,
    refractory_us: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signal events of ``P`` pixels over the frames ``log_frames`` ``[N, P]`` at ``times``.

    The first interval runs from ``state.last_time`` to ``times[0]``. ``state`` is updated in
    place, so consecutive calls continue exactly where the previous one stopped.

    Args:
        log_frames: log intensities ``[N, P]``.
        times: frame times in microseconds ``[N]``, strictly increasing and after
            ``state.last_time``.
        state: pixel state, updated in place.
        c_on: ON threshold of each pixel ``[P]``.
        c_off: OFF threshold of each pixel ``[P]``.
        refractory_us: blind time after each event.

    Returns:
        ``(pixel, t, on)``: pixel indices, event times (float microseconds) and polarities, in
        the order they were generated (not sorted).
    """
    pixels: list[np.ndarray] = []
    stamps: list[np.ndarray] = []
    polarity: list[np.ndarray] = []
    for k in range(log_frames.shape[0]):
        t0, t1 = state.last_time, float(times[k])
        l0, l1 = state.last_log, log_frames[k]
        span = t1 - t0

        def level_at(t: np.ndarray, idx: np.ndarray, l0=l0, l1=l1, t0=t0, span=span) -> np.ndarray:
            return l0[idx] + (l1[idx] - l0[idx]) * ((t - t0) / span)

        start = np.full(l1.shape, t0)
        # Blind pixels whose reset switch releases inside this interval.
        released = np.flatnonzero(state.blind & (state.release <= t1))
        if released.size:
            t_rel = np.maximum(state.release[released], t0)
            state.ref[released] = level_at(t_rel, released)
            start[released] = t_rel
            state.blind[released] = False
        ref = state.ref
        idx = np.flatnonzero(~state.blind & ((l1 - ref >= c_on) | (ref - l1 >= c_off)))
        while idx.size:
            up = l1[idx] - ref[idx] >= c_on[idx]
            level = np.where(up, ref[idx] + c_on[idx], ref[idx] - c_off[idx])
            s = start[idx]
            ls = level_at(s, idx)
            t_cross = s + (level - ls) / (l1[idx] - ls) * (t1 - s)
            t_cross = np.clip(t_cross, s, t1)
            pixels.append(idx)
            stamps.append(t_cross)
            polarity.append(up)
            if refractory_us == 0:
                ref[idx] = level
                start[idx] = t_cross
            else:
                t_rel = t_cross + refractory_us
                inside = t_rel <= t1
                free, held = idx[inside], idx[~inside]
                ref[free] = level_at(t_rel[inside], free)
                start[free] = t_rel[inside]
                state.blind[held] = True
                state.release[held] = t_rel[~inside]
                idx = free
            idx = idx[(l1[idx] - ref[idx] >= c_on[idx]) | (ref[idx] - l1[idx] >= c_off[idx])]
        state.last_log = np.array(l1, dtype=np.float64)
        state.last_time = t1
    if not pixels:
        empty = np.empty(0)
        return empty.astype(np.int64), empty, empty.astype(bool)
    return np.concatenate(pixels), np.concatenate(stamps), np.concatenate(polarity)


def _check_frames(frames: np.ndarray, times: np.ndarray, shape: tuple[int, int] | None) -> None:
    if frames.ndim != 3:
        raise ValueError(f"frames must be an array [N, H, W], got shape {frames.shape}")
    if shape is not None and frames.shape[1:] != shape:
        raise ValueError(
            f"frames have size (H, W) = {frames.shape[1:]}, but the sensor is (H, W) = {shape}"
        )
    if times.shape != (frames.shape[0],):
        raise ValueError(
            f"timestamps must hold one time per frame, shape ({frames.shape[0]},), got "
            f"{times.shape}"
        )
    if not np.all(np.isfinite(frames)) or (frames.size and frames.min() < 0):
        raise ValueError("frames must hold finite, non-negative intensities")
    if not np.all(np.isfinite(times)):
        raise ValueError("timestamps must be finite (microseconds)")
    if np.any(np.diff(times) <= 0):
        raise ValueError("timestamps must be strictly increasing")


class EventEmulator:
    """A DVS sensor fed with frames; see the module docstring for the pixel model.

    The emulator keeps its pixels' state between calls: the first frame it ever sees sets the
    reference levels (no events), and every later call continues from the last frame, so a
    video may be fed in chunks with the same result as in one call. :meth:`reset` forgets the
    state (the thresholds, drawn once per sensor, stay).

    Args:
        sensor_size: ``(W, H)`` or ``(W, H, 2)`` of the sensor.
        threshold: mean contrast threshold in log-intensity units (ON and OFF).
        threshold_off: mean OFF threshold when it differs from the ON one.
        threshold_sigma: standard deviation of the per-pixel thresholds (mismatch).
        min_threshold: floor of the per-pixel thresholds.
        refractory_us: blind time after each event, in microseconds.
        noise_rate_hz: rate of background shot-noise events per pixel.
        log_eps: :math:`\\varepsilon` in :math:`\\ln(I + \\varepsilon)`, keeps dark pixels finite.
        seed: seed of the thresholds and the noise (``None``: fresh entropy).

    Example:
        >>> emu = EventEmulator((32, 24), threshold=0.2, seed=0)
        >>> frames = np.random.default_rng(0).random((10, 24, 32))
        >>> events = emu(frames, np.arange(10) * 1000.0)   # 1 kHz video
        >>> events.dtype.names, emu.sensor_size
        (('x', 'y', 't', 'p'), (32, 24, 2))
    """

    def __init__(
        self,
        sensor_size: tuple[int, ...],
        *,
        threshold: float = 0.2,
        threshold_off: float | None = None,
        threshold_sigma: float = 0.03,
        min_threshold: float = 0.01,
        refractory_us: float = 0.0,
        noise_rate_hz: float = 0.0,
        log_eps: float = 1e-3,
        seed: int | None = None,
    ):
        size = tuple(int(s) for s in sensor_size)
        if len(size) not in (2, 3) or min(size[:2]) <= 0 or (len(size) == 3 and size[2] != 2):
            raise ValueError(f"sensor_size must be (W, H) or (W, H, 2), got {sensor_size!r}")
        if not refractory_us >= 0:
            raise ValueError(f"refractory_us must be >= 0, got {refractory_us}")
        if not noise_rate_hz >= 0:
            raise ValueError(f"noise_rate_hz must be >= 0, got {noise_rate_hz}")
        if not log_eps > 0:
            raise ValueError(f"log_eps must be positive, got {log_eps}")
        self.width, self.height = size[0], size[1]
        self.refractory_us = float(refractory_us)
        self.noise_rate_hz = float(noise_rate_hz)
        self.log_eps = float(log_eps)
        self.rng = np.random.default_rng(seed)
        n = self.width * self.height
        off = threshold if threshold_off is None else threshold_off
        self.c_on = draw_thresholds(self.rng, n, threshold, threshold_sigma, min_threshold)
        self.c_off = draw_thresholds(self.rng, n, off, threshold_sigma, min_threshold)
        self.state: PixelState | None = None

    @property
    def sensor_size(self) -> tuple[int, int, int]:
        """``(W, H, 2)``."""
        return (self.width, self.height, 2)

    def thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel ``(C_on, C_off)`` as ``[H, W]`` arrays."""
        shape = (self.height, self.width)
        return self.c_on.reshape(shape).copy(), self.c_off.reshape(shape).copy()

    def reset(self) -> None:
        """Forget the pixel state; the next frame sets the reference levels again."""
        self.state = None

    def __call__(self, frames: np.ndarray, timestamps_us: np.ndarray) -> np.ndarray:
        """Events caused by ``frames`` ``[N, H, W]`` (linear intensities >= 0) shown at
        ``timestamps_us`` ``[N]``, sorted by time.

        Raises:
            ValueError: for frames of the wrong size, negative or non-finite intensities, or
                timestamps that do not increase (also across calls).
        """
        frames = np.asarray(frames, dtype=np.float64)
        times = np.asarray(timestamps_us, dtype=np.float64)
        _check_frames(frames, times, (self.height, self.width))
        logs = np.log(frames.reshape(frames.shape[0], -1) + self.log_eps)
        if self.state is None:
            if frames.shape[0] == 0:
                return np.empty(0, dtype=EVENT_DTYPE)
            self.state = PixelState.start(logs[0], times[0])
            logs, times = logs[1:], times[1:]
        elif times.size and times[0] <= self.state.last_time:
            raise ValueError(
                f"timestamps must continue after the previous call's last frame "
                f"({self.state.last_time} us), got {times[0]} us"
            )
        t_begin = self.state.last_time
        pixel, t, on = emulate_pixels(
            logs, times, self.state, self.c_on, self.c_off, self.refractory_us
        )
        if self.noise_rate_hz > 0 and times.size:
            npix, nt, non = shot_noise(
                self.rng, self.width * self.height, t_begin, float(times[-1]), self.noise_rate_hz
            )
            pixel, t, on = np.concatenate([pixel, npix]), np.concatenate([t, nt]), np.r_[on, non]
        return pack_events(pixel, t, on, self.width)


def shot_noise(
    rng: np.random.Generator, num_pixels: int, t0: float, t1: float, rate_hz: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background events of ``num_pixels`` pixels in ``(t0, t1]`` us at ``rate_hz`` per pixel:
    a Poisson count, uniform times and pixels, random polarity."""
    count = rng.poisson(rate_hz * num_pixels * (t1 - t0) * 1e-6)
    pixel = rng.integers(0, num_pixels, count)
    t = rng.uniform(t0, t1, count)
    on = rng.random(count) < 0.5
    return pixel, t, on


def pack_events(pixel: np.ndarray, t: np.ndarray, on: np.ndarray, width: int) -> np.ndarray:
    """Structured events (:data:`EVENT_DTYPE`) from flat pixel indices (row-major, ``width``
    columns), float times in microseconds (floored) and polarities, sorted by time then pixel."""
    t_int = np.floor(t).astype(np.int64)
    order = np.lexsort((pixel, t_int))
    events = np.empty(order.size, dtype=EVENT_DTYPE)
    events["x"] = pixel[order] % width
    events["y"] = pixel[order] // width
    events["t"] = t_int[order]
    events["p"] = on[order]
    return events
