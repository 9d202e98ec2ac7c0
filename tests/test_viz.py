"""Figures render to non-empty PNGs; inputs are validated; event frames are counted right."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import snn
from snn.layers import Monitor, TimeDistributed

viz = pytest.importorskip("snn.viz")
pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(fig, path) -> bytes:
    fig.savefig(path, dpi=60)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 2000
    from PIL import Image

    with Image.open(path) as img:
        arr = np.asarray(img.convert("L"))
    assert arr.std() > 1.0  # something is drawn, not a blank canvas
    return data


def _events(n=500, w=16, h=12, seed=0):
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])
    ev["x"] = rng.integers(0, w, n)
    ev["y"] = rng.integers(0, h, n)
    ev["t"] = np.sort(rng.integers(0, 10_000, n))
    ev["p"] = rng.integers(0, 2, n)
    return ev


def test_raster_traces_and_rates_from_a_monitor(tmp_path):
    model = nn.Sequential(
        TimeDistributed(nn.Linear(8, 16)),
        snn.LIF(0.9),
        TimeDistributed(nn.Linear(16, 4)),
        snn.LIF(0.8),
    )
    x = torch.rand(30, 2, 8) * 2
    with Monitor(model, v=True) as mon:
        model(x)
    _png(viz.spike_raster(mon.spikes("1")), tmp_path / "raster.png")
    _png(viz.spike_raster(mon.spikes("1")[:, 0], sample=None, dt=1.0), tmp_path / "r2.png")
    _png(
        viz.membrane_traces(mon.v("1"), spikes=mon.spikes("1"), threshold=1.0, neurons=[0, 5]),
        tmp_path / "v.png",
    )
    _png(viz.firing_rate_histogram(mon), tmp_path / "rates.png")
    with pytest.raises(ValueError, match="out of range"):
        viz.membrane_traces(mon.v("1"), neurons=[99])
    with pytest.raises(ValueError, match=r"\[T, B"):
        viz.spike_raster(torch.zeros(5, 3))
    with pytest.raises(TypeError, match="Monitor"):
        viz.firing_rate_histogram([1, 2])


def test_events_to_frames_counts_by_hand():
    ev = np.zeros(4, dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])
    ev["x"], ev["y"], ev["t"], ev["p"] = [0, 0, 2, 1], [0, 0, 1, 2], [0, 10, 60, 100], [1, 1, 0, 1]
    frames = viz.events_to_frames(ev, (3, 3, 2), 2)
    expected = np.zeros((2, 3, 3))
    expected[0, 0, 0] = 2  # two ON events at (0, 0) in the first half
    expected[1, 1, 2] = -1  # OFF at x=2, y=1 (t=60)
    expected[1, 2, 1] = 1  # the last event lands in the last frame
    np.testing.assert_array_equal(frames, expected)
    with pytest.raises(ValueError, match="outside the sensor"):
        viz.events_to_frames(ev, (2, 2, 2), 2)
    with pytest.raises(ValueError, match="lack the fields"):
        viz.events_to_frames(np.zeros(2, dtype=[("x", "i2")]), (3, 3, 2), 2)


def test_event_frames_and_animation(tmp_path):
    ev = _events()
    _png(viz.event_frames(ev, (16, 12, 2), n_frames=6, columns=3), tmp_path / "frames.png")
    anim = viz.event_animation(ev, (16, 12, 2), n_frames=3)
    path = tmp_path / "events.gif"
    anim.save(str(path), writer="pillow")
    assert path.stat().st_size > 500


def test_accuracy_and_energy_figures(tmp_path):
    fig = viz.accuracy_vs_steps(
        {"converted": {4: 0.5, 8: 0.8, 16: 0.9}, "trained": {4: 0.85, 8: 0.9}},
        references={"ANN": 0.95},
    )
    _png(fig, tmp_path / "acc.png")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        viz.accuracy_vs_steps({"x": {4: 95.0}})
    fig = viz.energy_bars(
        {"ANN (GPU)": {"MAC": 3e-6, "memory": 1e-6}, "SNN (Loihi)": {"SOP": 1e-8, "neuron": 2e-9}},
        log=True,
    )
    _png(fig, tmp_path / "energy.png")
    with pytest.raises(ValueError, match=">= 0"):
        viz.energy_bars({"a": {"b": -1.0}})


def _texts(fig) -> list:
    """Every visible, non-empty text of the figure, after drawing it."""
    from matplotlib.text import Text

    fig.canvas.draw()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _assert_nothing_clipped(fig) -> None:
    """Everything drawn (labels, titles, legends, tick labels) lies inside the figure."""
    fig.canvas.draw()
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # inches, drawn artists only
    page = fig.bbox_inches
    tol = 0.02
    assert drawn.x0 >= page.x0 - tol and drawn.x1 <= page.x1 + tol, (drawn, page)
    assert drawn.y0 >= page.y0 - tol and drawn.y1 <= page.y1 + tol, (drawn, page)


def test_event_frames_have_units_colour_bar_and_on_off_legend(tmp_path):
    ev = _events(n=2000)
    ev["t"] = np.sort(np.random.default_rng(1).integers(0, 300_001, len(ev)))  # 0.3 s in us
    ev["t"][0], ev["t"][-1] = 0, 300_000
    fig = viz.event_frames(ev, (16, 12, 2), n_frames=6, columns=3)
    _png(fig, tmp_path / "frames.png")
    texts = [t.get_text() for t in _texts(fig)]
    assert "0\u201350 ms" in texts and "250\u2013300 ms" in texts  # windows with their unit
    assert any("ON \u2212 OFF" in t for t in texts)  # the colour bar's label
    assert "ON (polarity 1)" in texts and "OFF (polarity 0)" in texts
    assert len(fig.axes) == 7  # six frames and the colour bar
    _assert_nothing_clipped(fig)
    fig = viz.event_frames(ev, (16, 12, 2), n_frames=2, time_unit="ms")  # t read as ms
    assert "0\u2013150 s" in [t.get_text() for t in _texts(fig)]
    with pytest.raises(ValueError, match="time_unit"):
        viz.event_frames(ev, (16, 12, 2), time_unit="ns")


def test_energy_figures_use_si_prefixes_and_module_paths(tmp_path):
    assert viz.si_scale(3.2e-6) == (1e-6, "\u00b5J") and viz.si_scale(4e-9) == (1e-9, "nJ")
    assert viz.si_scale(4e-10) == (1e-12, "pJ") and viz.si_scale(0.0) == (1.0, "J")
    fig = viz.energy_bars({"ANN": {"MAC": 3e-6, "memory": 1e-6}, "SNN": {"SOP": 2e-7}})
    _png(fig, tmp_path / "bars.png")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "energy per inference (\u00b5J)"
    assert {"4 \u00b5J", "0.2 \u00b5J"} <= {t.get_text() for t in _texts(fig)}
    _assert_nothing_clipped(fig)

    from snn.energy import EnergyReport, OpCounter

    torch.manual_seed(0)
    model = nn.Sequential(
        TimeDistributed(nn.Linear(6, 8)), snn.LIF(0.8), TimeDistributed(nn.Linear(8, 3))
    )
    with OpCounter(model) as counter:
        model(torch.rand(4, 2, 6))
    reports = [
        EnergyReport(counter.counts(), t, ann_target="cmos45_fp32")
        for t in ("loihi", "cmos45_fp32")
    ]
    fig = EnergyReport.plot(reports[1])
    _png(fig, tmp_path / "one.png")
    from snn.energy.report import plot_reports

    fig = plot_reports(reports)
    _png(fig, tmp_path / "two.png")
    texts = {t.get_text() for t in _texts(fig)}
    assert {"0.0 (Linear)", "1 (LIF)", "2.0 (Linear)"} <= texts  # module paths, not indices
    assert any(t.startswith("ANN / SNN \u2264 ") for t in texts)  # loihi leaves MACs unpriced
    assert any(t.startswith("ANN / SNN = ") for t in texts)
    assert any(t.startswith("\u2265 ") and t.endswith("nJ") for t in texts)
    assert all("uJ" not in t for t in texts)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert any(label.startswith("energy (nJ") for label in labels)
    _assert_nothing_clipped(fig)
