"""``snn demo --quick`` in a temporary folder writes a complete, sensible report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from snn.demo import REPORT_FILES, summary_markdown

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "snn.cli", "demo", "--quick", "--no-progress", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


@pytest.mark.slow
def test_quick_demo_writes_every_file(quick_report):
    out, stdout = quick_report
    for name in REPORT_FILES:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name
        if name.endswith(".png"):
            data = path.read_bytes()
            assert data[:8] == PNG_MAGIC and len(data) > 5000, name
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temp files left
    assert "summary:" in stdout and "converted SNN accuracy" in stdout


@pytest.mark.slow
def test_quick_demo_numbers_are_in_range(quick_report):
    out, _ = quick_report
    report = json.loads((out / "report.json").read_text())
    steps = [str(t) for t in report["config"]["steps"]]
    assert report["data"]["train"] + report["data"]["test"] == 1797
    assert 0.8 <= report["ann"]["test_accuracy"] <= 1.0  # digits are easy even in 6 epochs
    conv = report["converted"]["test_accuracy"]
    trained = report["trained"]["test_accuracy"]
    assert sorted(conv, key=int) == steps and sorted(trained, key=int) == steps
    for acc in (*conv.values(), *trained.values()):
        assert 0.0 <= acc <= 1.0
    # conversion approaches the CNN as T grows; one step is far from it
    assert conv[steps[-1]] >= report["ann"]["test_accuracy"] - 0.1
    assert conv[steps[0]] < conv[steps[-1]]
    assert trained[str(report["trained"]["train_steps"])] > 0.5  # well above chance (0.1)
    losses = report["trained"]["loss_per_epoch"]
    assert losses[-1] < losses[0]
    energy = report["energy"]
    assert energy["ann"]["complete"] and energy["ann"]["joules_per_sample"] > 0
    for per in energy["snn"].values():
        assert per["spikes_per_sample"] > 0
        for target, entry in per["targets"].items():
            assert entry["joules_per_sample"] > 0, target
            assert entry["complete"] == (
                entry["unpriced_ops_per_sample"] == 0 and not entry["uncounted"]
            )
            assert entry["uncounted"] == [], target  # every layer of both SNNs is counted
    summary = (out / "summary.md").read_text()
    assert summary == summary_markdown(report)
    assert "| T | converted CNN | trained SNN |" in summary


@pytest.mark.cuda
@pytest.mark.slow
def test_quick_demo_on_cuda(tmp_path):
    from snn.demo import DemoConfig, run_demo

    report = run_demo(tmp_path, DemoConfig.quick(), device="cuda", progress=False, verbose=False)
    assert report["machine"]["device"].startswith("cuda")
    assert report["ann"]["test_accuracy"] >= 0.8
