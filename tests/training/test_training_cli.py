"""The ``snn train`` arguments, config files, tasks and the event-frame transform."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _toy import toy_data, toy_model

from snn.models import MODELS
from snn.training import TrainConfig, load_config
from snn.training.cli import add_train_arguments, config_from_args, main
from snn.training.tasks import TASKS, EventFrames, Task, build_task_data


def _parse(*argv: str) -> argparse.Namespace:
    return add_train_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_precedence_defaults_task_file_flags(tmp_path: Path) -> None:
    config = config_from_args(_parse("nmnist", "--root", "data"))
    assert config.epochs == TASKS["nmnist"].settings["epochs"]  # task over defaults
    assert config.root == "data" and config.dataset == "nmnist"
    assert config.weight_decay == TrainConfig().weight_decay
    path = tmp_path / "run.toml"
    path.write_text('epochs = 3\nlr = 0.5\noptimizer = "sgd"\n[model_kwargs]\nchannels = 8\n')
    config = config_from_args(_parse("nmnist", "--config", str(path), "--lr", "0.1", "--no-amp"))
    assert config.epochs == 3  # file over task
    assert config.lr == 0.1  # flag over file
    assert config.optimizer == "sgd" and config.model_kwargs == {"channels": 8}
    assert config.amp is False and TASKS["nmnist"].settings["amp"] is True
    assert config.batch_size == TASKS["nmnist"].settings["batch_size"]  # task, file silent


def test_json_config_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"epochs": 2, "readout": "max"}))
    assert load_config(path).readout == "max"
    path.write_text(json.dumps({"epochs": 2, "learning_rate": 0.1}))
    with pytest.raises(ValueError, match=r"run\.json: unknown option.*learning_rate"):
        load_config(path)
    path.write_text(json.dumps({"epochs": 0}))
    with pytest.raises(ValueError, match=r"run\.json: .*epochs must be an integer >= 1"):
        load_config(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="invalid JSON"):
        load_config(path)
    bad = tmp_path / "run.yaml"
    bad.write_text("epochs: 2")
    with pytest.raises(ValueError, match=r"\.json or \.toml"):
        load_config(bad)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match="--model-kwargs"):
        config_from_args(_parse("nmnist", "--model-kwargs", "{channels: 8}"))


def test_run_train_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    toy = Task("toy", lambda root, steps, seed: (toy_data(32), toy_data(16, seed=1)), "toy", 6)
    monkeypatch.setitem(TASKS, "toy", toy)
    monkeypatch.setitem(MODELS, "toy", lambda **kw: toy_model(**kw))
    out = tmp_path / "run"
    argv = ["toy", "--epochs", "2", "--out-dir", str(out), "--lr", "0.05", "--batch-size", "16"]
    argv += ["--device", "cpu", "--no-progress", "--no-tensorboard", "--model-kwargs"]
    argv += ['{"dropout": 0.0}']
    assert main(argv) == 0
    assert "toy: toy test accuracy" in capsys.readouterr().out
    rows = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2]
    # resuming a finished run trains no further epoch and keeps the history
    assert main([*argv, "--resume"]) == 0
    assert len(json.loads((out / "metrics.json").read_text())) == 2


def test_event_frames_count_events() -> None:
    from snn.datasets.emulator import EVENT_DTYPE

    ev = np.zeros(5, dtype=EVENT_DTYPE)
    ev["x"], ev["y"] = [0, 1, 1, 2, 0], [0, 0, 0, 1, 2]
    ev["t"], ev["p"] = [0, 10, 20, 30, 40], [True, False, False, True, True]
    frames = EventFrames((3, 3, 2), steps=2)(ev)
    assert frames.dtype == torch.float32 and frames.shape == (2, 2, 3, 3)
    # two bins of 20 us: [0, 20) and [20, 40); as in tonic, the event at the end time is not
    # in any bin
    assert frames.sum() == 4
    assert frames[0, 0, 0, 1] == 1 and frames[1, 0, 0, 1] == 1  # OFF at (x=1, y=0)
    assert frames[0, 1, 0, 0] == 1 and frames[1, 1, 1, 2] == 1  # ON at (0, 0) and (2, 1)
    tonic_functional = pytest.importorskip("tonic.functional")
    reference = tonic_functional.to_frame_numpy(ev, (3, 3, 2), n_time_bins=2)
    np.testing.assert_array_equal(frames.numpy(), reference.astype(np.float32))


def test_event_frames_on_a_real_nmnist_recording(fixtures_dir: Path) -> None:
    from snn.datasets.io import read_atis_bin

    rec = read_atis_bin(fixtures_dir / "nmnist_sample.bin", sensor_size=(34, 34, 2))
    frames = EventFrames((34, 34, 2), steps=10)(rec.events)
    assert frames.shape == (10, 2, 34, 34)
    last = rec.events["t"].max()
    assert frames.sum() == np.count_nonzero(rec.events["t"] < last)


def test_tasks_need_their_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown task"):
        build_task_data("mnist-events", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        build_task_data("nmnist", str(tmp_path))
    for name, task in TASKS.items():
        assert task.model in MODELS, name


def test_event_frames_downsample_sums_blocks() -> None:
    from snn.datasets.emulator import EVENT_DTYPE

    rng = np.random.default_rng(0)
    ev = np.zeros(200, dtype=EVENT_DTYPE)
    ev["x"], ev["y"] = rng.integers(0, 6, 200), rng.integers(0, 4, 200)
    ev["t"], ev["p"] = np.sort(rng.integers(0, 1000, 200)), rng.random(200) < 0.5
    full = EventFrames((6, 4, 2), steps=3)(ev)
    half = EventFrames((6, 4, 2), steps=3, downsample=2)(ev)
    assert half.shape == (3, 2, 2, 3)
    assert half[1, 0, 1, 2] == full[1, 0, 2:4, 4:6].sum()
    assert half.sum() == full.sum()
    with pytest.raises(ValueError, match="downsample"):
        EventFrames((6, 4, 2), steps=3, downsample=4)
