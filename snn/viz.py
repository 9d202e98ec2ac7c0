"""Matplotlib figures: spike rasters, membrane traces, firing rates, event streams, accuracy
against time steps, energy breakdowns.

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot`` (no global
figure state, no GUI backend needed); save it with ``fig.savefig(path)``, or show it in a
notebook by leaving it as the cell's value. Sequences are time-first, ``[T, B, ...]``.

Requires matplotlib (``pip install 'snn[viz]'``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import Tensor

__all__ = [
    "accuracy_vs_steps",
    "energy_bars",
    "event_animation",
    "event_frames",
    "events_to_frames",
    "firing_rate_histogram",
    "membrane_traces",
    "si_scale",
    "spike_raster",
]


def _figure(width: float = 6.4, height: float = 4.0) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def si_scale(value: float, unit: str = "J") -> tuple[float, str]:
    """The SI prefix that shows ``value`` (e.g. the largest bar) between 1 and 1000.

    Returns:
        ``(factor, label)``: divide values by ``factor`` and label the axis with ``label``,
        e.g. ``si_scale(3.2e-6) == (1e-6, "µJ")``.
    """
    value = abs(float(value))
    for prefix, factor in (("", 1.0), ("m", 1e-3), ("\u00b5", 1e-6), ("n", 1e-9), ("p", 1e-12)):
        if value >= factor:
            return factor, prefix + unit
    return (1e-15, "f" + unit) if value > 0 else (1.0, unit)


def _as_numpy(x: Tensor | np.ndarray, what: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().float().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x.astype(np.float64, copy=False)
    raise TypeError(f"{what} must be a tensor or a numpy array, got {type(x).__name__}")


def _per_neuron(x: Tensor | np.ndarray, what: str, sample: int | None) -> np.ndarray:
    """``[T, B, ...] -> [T, N]`` for one sample (``[T, N]`` passes through when sample is None)."""
    arr = _as_numpy(x, what)
    if sample is None:
        if arr.ndim != 2:
            raise ValueError(f"{what} must be [T, N] when sample=None, got shape {arr.shape}")
        return arr
    if arr.ndim < 3:
        raise ValueError(
            f"{what} must be time-first [T, B, ...] (or pass sample=None for [T, N]), got shape "
            f"{arr.shape}"
        )
    if not 0 <= sample < arr.shape[1]:
        raise ValueError(f"sample={sample} is out of range for a batch of {arr.shape[1]}")
    return arr[:, sample].reshape(arr.shape[0], -1)


def spike_raster(
    spikes: Tensor | np.ndarray,
    *,
    sample: int | None = 0,
    max_neurons: int = 512,
    title: str | None = None,
    dt: float | None = None,
) -> Any:
    """Raster plot: a dot at (step, neuron) for every spike.

    Args:
        spikes: ``[T, B, ...]`` (neurons flattened), or ``[T, N]`` with ``sample=None``.
        sample: which batch element to show.
        max_neurons: show the first ``max_neurons`` neurons only (a readable plot).
        title: axes title.
        dt: step length in ms; the x axis is in ms when given, in steps otherwise.

    Returns:
        the figure.
    """
    s = _per_neuron(spikes, "spikes", sample)[:, :max_neurons]
    t, n = np.nonzero(s)
    fig = _figure()
    ax = fig.add_subplot()
    scale = 1.0 if dt is None else dt
    ax.scatter(
        t * scale,
        n,
        s=max(8.0, 600.0 / max(s.shape[1], 1)),
        marker="|",
        color="black",
        linewidths=1.2,
    )
    ax.set_xlim(-0.5 * scale, (s.shape[0] - 0.5) * scale)
    ax.set_ylim(-0.5, s.shape[1] - 0.5)
    ax.set_xlabel("time step" if dt is None else "time (ms)")
    ax.set_ylabel("neuron")
    rate = s.mean() if s.size else 0.0
    ax.set_title(title or f"{int(s.sum())} spikes, {rate:.3f} per neuron and step")
    return fig


def membrane_traces(
    v: Tensor | np.ndarray,
    *,
    spikes: Tensor | np.ndarray | None = None,
    threshold: float | None = 1.0,
    neurons: Sequence[int] = (0, 1, 2),
    sample: int | None = 0,
    title: str | None = None,
) -> Any:
    """Membrane potential of a few neurons over time, with the threshold and spike times.

    Args:
        v: membrane potentials ``[T, B, ...]`` (e.g. ``Monitor(model, v=True).v(name)``), or
            ``[T, N]`` with ``sample=None``.
        spikes: the same neurons' spikes, marked on each trace (optional).
        threshold: drawn as a dashed line (``None``: not drawn).
        neurons: flat indices of the neurons to show.
        sample: batch element.
        title: figure title.
    """
    trace = _per_neuron(v, "v", sample)
    spk = None if spikes is None else _per_neuron(spikes, "spikes", sample)
    if spk is not None and spk.shape != trace.shape:
        raise ValueError(f"spikes {spk.shape} and v {trace.shape} must have the same shape")
    neurons = list(neurons)
    if not neurons:
        raise ValueError("neurons must name at least one neuron")
    bad = [i for i in neurons if not 0 <= i < trace.shape[1]]
    if bad:
        raise ValueError(f"neurons {bad} out of range for {trace.shape[1]} neurons")
    fig = _figure(6.4, 1.6 + 1.2 * len(neurons))
    axes = fig.subplots(len(neurons), 1, sharex=True, squeeze=False)[:, 0]
    steps = np.arange(trace.shape[0])
    for ax, i in zip(axes, neurons):
        ax.plot(steps, trace[:, i], color="tab:blue", lw=1.2)
        if threshold is not None:
            ax.axhline(threshold, color="tab:red", ls="--", lw=1, label="threshold")
        if spk is not None:
            t = np.nonzero(spk[:, i])[0]
            top = threshold if threshold is not None else float(trace[:, i].max())
            ax.scatter(t, np.full(t.shape, top), marker="v", color="black", s=18, zorder=3)
        ax.set_ylabel(f"v[{i}]")
    axes[-1].set_xlabel("time step")
    if threshold is not None:
        axes[0].legend(loc="upper right", fontsize="small")
    fig.suptitle(title or "membrane potential")
    return fig


def firing_rate_histogram(
    recordings: Any,
    *,
    bins: int = 20,
    title: str | None = None,
) -> Any:
    """Histogram of per-neuron firing rates (spikes per step), one panel per layer.

    Args:
        recordings: a :class:`snn.layers.Monitor` after a run, or a mapping from layer name to
            spikes ``[T, B, ...]``; panels are titled with the layer's module path (and its
            class, from a monitor).
        bins: histogram bins over ``[0, 1]``.
        title: figure title.
    """
    types: dict[str, str] = {}
    if hasattr(recordings, "layers") and hasattr(recordings, "spikes"):
        layers = {n: recordings.spikes(n) for n in recordings.layers}
        modules = getattr(recordings, "modules", {})
        types = {n: type(m).__name__ for n, m in getattr(modules, "items", dict().items)()}
    elif isinstance(recordings, Mapping):
        layers = dict(recordings)
    else:
        raise TypeError(
            "recordings must be a snn.layers.Monitor or a mapping of layer name -> spikes, got "
            f"{type(recordings).__name__}"
        )
    if not layers:
        raise ValueError("no layers to plot")
    fig = _figure(3.2 * min(len(layers), 4), 3.0 * ((len(layers) + 3) // 4))
    axes = fig.subplots((len(layers) + 3) // 4, min(len(layers), 4), squeeze=False).ravel()
    for ax, (name, spikes) in zip(axes, layers.items()):
        s = _as_numpy(spikes, f"spikes of layer {name!r}")
        if s.ndim < 2:
            raise ValueError(f"spikes of layer {name!r} must be [T, B, ...], got {s.shape}")
        rates = s.reshape(s.shape[0], s.shape[1], -1).mean(axis=(0, 1))
        ax.hist(rates, bins=bins, range=(0.0, 1.0), color="tab:green", edgecolor="black", lw=0.5)
        ax.axvline(rates.mean(), color="black", ls="--", lw=1)
        kind = f" ({types[name]})" if name in types else ""
        ax.set_title(f"{name or '<model>'}{kind}\nmean {rates.mean():.3f}", fontsize="medium")
        ax.set_xlabel("spikes per step")
    for ax in axes[len(layers) :]:
        ax.set_visible(False)
    axes[0].set_ylabel("neurons")
    fig.suptitle(title or "firing rates")
    return fig


def events_to_frames(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    n_frames: int,
) -> np.ndarray:
    """Accumulate events into ``n_frames`` frames of equal duration, ON minus OFF counts.

    Args:
        events: structured array with fields ``x, y, t, p`` (tonic's layout).
        sensor_size: ``(W, H, P)``.
        n_frames: number of time bins between the first and the last event.

    Returns:
        ``[n_frames, H, W]`` float array (positive: ON events dominate).
    """
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise TypeError("events must be a numpy structured array with fields x, y, t, p")
    missing = {"x", "y", "t", "p"} - set(events.dtype.names)
    if missing:
        raise ValueError(f"events lack the fields {sorted(missing)}; expected x, y, t, p")
    if len(sensor_size) != 3:
        raise ValueError(f"sensor_size must be (W, H, P), got {sensor_size}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    w, h, _ = (int(v) for v in sensor_size)
    frames = np.zeros((n_frames, h, w), dtype=np.float64)
    if len(events) == 0:
        return frames
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    if x.min() < 0 or x.max() >= w or y.min() < 0 or y.max() >= h:
        raise ValueError(
            f"event coordinates x in [{x.min()}, {x.max()}], y in [{y.min()}, {y.max()}] fall "
            f"outside the sensor of width {w} and height {h}"
        )
    t = events["t"].astype(np.float64)
    span = t.max() - t.min()
    b = np.zeros(len(t), dtype=np.int64) if span == 0 else ((t - t.min()) / span * n_frames)
    b = np.minimum(np.asarray(b, dtype=np.int64), n_frames - 1)
    sign = np.where(events["p"].astype(np.int64) > 0, 1.0, -1.0)
    np.add.at(frames, (b, y, x), sign)
    return frames


def _frame_image(ax: Any, frame: np.ndarray, vmax: float) -> Any:
    ax.set_xticks([])
    ax.set_yticks([])
    return ax.imshow(frame, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")


def _time_unit(span: float, unit: str) -> tuple[float, str]:
    """Divide timestamps in ``unit`` (``"us"``, ``"ms"``, ``"s"``) by the factor returned to
    show them in the unit returned (µs, ms or s)."""
    to_us = {"us": 1.0, "ms": 1e3, "s": 1e6}
    if unit not in to_us:
        raise ValueError(f"time_unit must be one of {sorted(to_us)}, got {unit!r}")
    span_us = span * to_us[unit]
    for label, factor in (("s", 1e6), ("ms", 1e3)):
        if span_us >= 10 * factor:
            return factor / to_us[unit], label
    return 1.0 / to_us[unit], "\u00b5s"


def _on_off_key(fig: Any, image: Any, axes: Any, vmax: float) -> None:
    """A colour bar of ON minus OFF counts, and a legend naming the two colours."""
    from matplotlib.patches import Patch

    bar = fig.colorbar(image, ax=axes, shrink=0.8, pad=0.02)
    bar.set_label("events per pixel (ON \u2212 OFF)")
    cmap = image.get_cmap()
    fig.legend(
        handles=[
            Patch(color=cmap(1.0), label="ON (polarity 1)"),
            Patch(color=cmap(0.0), label="OFF (polarity 0)"),
        ],
        loc="outside lower center",
        ncols=2,
        fontsize="small",
    )


def event_frames(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    *,
    n_frames: int = 8,
    columns: int = 4,
    title: str | None = None,
    time_unit: str = "us",
) -> Any:
    """A grid of frames showing an event stream (red ON, blue OFF), each titled with its time
    window, with a colour bar of ON minus OFF counts and an ON/OFF legend.

    Args:
        events: structured array with fields ``x, y, t, p``.
        sensor_size: ``(W, H, P)``.
        n_frames: time bins.
        columns: frames per row.
        title: figure title.
        time_unit: unit of ``events["t"]`` (``"us"``, tonic's and the readers' convention,
            ``"ms"`` or ``"s"``); windows are shown in µs, ms or s, whichever reads best.
    """
    frames = events_to_frames(events, sensor_size, n_frames)
    rows = (n_frames + columns - 1) // columns
    cols = min(columns, n_frames)
    fig = _figure(2.2 * cols + 1.2, 2.3 * rows + 1.0)
    axes = fig.subplots(rows, cols, squeeze=False)
    vmax = max(float(np.abs(frames).max()), 1.0)
    t = events["t"] if len(events) else np.zeros(1)
    t0 = float(t.min())
    edges = np.linspace(0.0, float(t.max()) - t0, n_frames + 1)
    factor, unit = _time_unit(edges[-1], time_unit)
    image = None
    for i, ax in enumerate(axes.ravel()):
        if i >= n_frames:
            ax.set_visible(False)
            continue
        image = _frame_image(ax, frames[i], vmax)
        ax.set_title(
            f"{edges[i] / factor:.3g}\u2013{edges[i + 1] / factor:.3g} {unit}", fontsize="small"
        )
    _on_off_key(fig, image, axes, vmax)
    fig.suptitle(title or f"{len(events)} events, time from the first event")
    return fig


def event_animation(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    *,
    n_frames: int = 30,
    interval_ms: int = 50,
    time_unit: str = "us",
) -> Any:
    """An animation of the event stream, frame by frame, with its time windows (timestamps in
    ``time_unit``, see :func:`event_frames`), a colour bar and an ON/OFF legend.

    Returns:
        a :class:`matplotlib.animation.FuncAnimation`; its ``.save("events.gif",
        writer="pillow")`` writes a GIF, ``.to_jshtml()`` shows it in a notebook, and
        ``._fig`` is the figure.
    """
    from matplotlib.animation import FuncAnimation

    frames = events_to_frames(events, sensor_size, n_frames)
    fig = _figure(4.8, 4.6)
    ax = fig.add_subplot()
    vmax = max(float(np.abs(frames).max()), 1.0)
    image = _frame_image(ax, frames[0], vmax)
    _on_off_key(fig, image, ax, vmax)
    t = events["t"] if len(events) else np.zeros(1)
    edges = np.linspace(0.0, float(t.max()) - float(t.min()), n_frames + 1)
    factor, unit = _time_unit(edges[-1], time_unit)

    def update(i: int) -> list[Any]:
        image.set_data(frames[i])
        ax.set_title(
            f"frame {i + 1}/{n_frames}: {edges[i] / factor:.3g}\u2013"
            f"{edges[i + 1] / factor:.3g} {unit}"
        )
        return [image]

    update(0)

    return FuncAnimation(fig, update, frames=n_frames, interval=interval_ms, blit=False)


def accuracy_vs_steps(
    curves: Mapping[str, Mapping[int, float]],
    *,
    references: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Any:
    """Accuracy against the number of time steps ``T``, one line per model.

    Args:
        curves: ``{label: {T: accuracy}}`` with accuracies in ``[0, 1]``.
        references: horizontal lines, e.g. ``{"ANN": 0.97}``.
        title: axes title.
    """
    if not curves:
        raise ValueError("curves is empty; expected {label: {T: accuracy}}")
    fig = _figure()
    ax = fig.add_subplot()
    for label, points in curves.items():
        if not points:
            raise ValueError(f"curve {label!r} has no points")
        steps = sorted(points)
        acc = [float(points[t]) for t in steps]
        if any(not 0.0 <= a <= 1.0 for a in acc):
            raise ValueError(f"curve {label!r}: accuracies must lie in [0, 1], got {acc}")
        ax.plot(steps, acc, marker="o", label=label)
    for i, (label, value) in enumerate((references or {}).items()):
        ax.axhline(float(value), ls="--", color=f"C{len(curves) + i}", label=label)
    ax.set_xscale("log", base=2)
    all_steps = sorted({int(t) for points in curves.values() for t in points})
    ax.set_xticks(all_steps, [str(t) for t in all_steps])
    ax.minorticks_off()
    ax.set_xlabel("time steps T")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "accuracy vs time steps")
    return fig


def energy_bars(
    breakdown: Mapping[str, Mapping[str, float]],
    *,
    unit: str = "J",
    log: bool = False,
    title: str | None = None,
) -> Any:
    """Stacked bars of energy per inference: one bar per model/target, one colour per
    component (e.g. synaptic operations, neuron updates, memory).

    Args:
        breakdown: ``{bar label: {component: energy}}``, energies non-negative.
        unit: unit of the values; ``"J"`` values are shown with an SI prefix (µJ, nJ, ...)
            chosen from the largest bar.
        log: logarithmic y axis (bars of very different size).
        title: axes title.
    """
    if not breakdown:
        raise ValueError("breakdown is empty; expected {label: {component: energy}}")
    components: list[str] = []
    for label, parts in breakdown.items():
        for comp, value in parts.items():
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{label!r}/{comp!r}: energy must be finite and >= 0, got {value}")
            if comp not in components:
                components.append(comp)
    labels = list(breakdown)
    fig = _figure(max(6.4, 1.1 * len(labels) + 2), 4.2)
    ax = fig.add_subplot()
    totals = [sum(float(v) for v in breakdown[lab].values()) for lab in labels]
    factor, shown_unit = si_scale(max(totals), unit) if unit == "J" else (1.0, unit)
    bottom = np.zeros(len(labels))
    for i, comp in enumerate(components):
        values = np.array([float(breakdown[lab].get(comp, 0.0)) for lab in labels]) / factor
        ax.bar(range(len(labels)), values, bottom=bottom, label=comp, color=f"C{i}")
        bottom += values
    for x, total in enumerate(bottom):
        ax.annotate(
            f"{total:.3g} {shown_unit}", (x, total), ha="center", va="bottom", fontsize="small"
        )
    if log:
        ax.set_yscale("log")
        positive = bottom[bottom > 0]
        if positive.size:  # room below the smallest bar and above the tallest label
            ax.set_ylim(float(positive.min()) / 3, float(positive.max()) * 3)
    else:
        ax.set_ylim(0, max(float(bottom.max()), 1e-30) * 1.15)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_ylabel(f"energy per inference ({shown_unit})")
    ax.legend(fontsize="small")
    ax.set_title(title or "energy per inference")
    return fig
