"""The training loop: learning, exact resume, checkpoints, metrics files, mixed precision."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _toy import toy_data, toy_model

from snn.training import CheckpointError, TrainConfig, fit, load_checkpoint
from snn.training.checkpoint import save_checkpoint


def _config(tmp_path: Path, **kw) -> TrainConfig:
    options = {
        "epochs": 4,
        "batch_size": 16,
        "lr": 0.02,
        "out_dir": str(tmp_path),
        "device": "cpu",
        "progress": False,
        "tensorboard": False,
        "readout": "mean",
    }
    return TrainConfig(**{**options, **kw})


def test_training_learns_the_toy_task(tmp_path: Path) -> None:
    result = fit(toy_model(), toy_data(64), toy_data(32, seed=1), _config(tmp_path))
    assert len(result.history) == 4
    assert result.final_accuracy >= 0.9
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best_accuracy == max(r["test_accuracy"] for r in result.history)
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()


def test_two_plus_two_epochs_equal_four_bitwise(tmp_path: Path) -> None:
    train, test = toy_data(48), toy_data(16, seed=1)
    full = fit(toy_model(), train, test, _config(tmp_path / "full"))
    first = fit(toy_model(), train, test, _config(tmp_path / "split", stop_after=2))
    assert len(first.history) == 2
    # a differently initialised model: the resumed run must take everything from the checkpoint
    resumed = fit(toy_model(seed=9), train, test, _config(tmp_path / "split", resume=True))
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    for (name, a), (_, b) in zip(
        full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    for row_full, row_resumed in zip(full.history, resumed.history, strict=True):
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr"):
            assert row_full[key] == row_resumed[key], key
    # the metrics files hold every epoch once, as in the uninterrupted run
    rows = list(csv.DictReader((tmp_path / "split" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    data = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert [r["test_accuracy"] for r in data] == [r["test_accuracy"] for r in full.history]


def test_resume_needs_a_matching_model(tmp_path: Path) -> None:
    fit(toy_model(), toy_data(32), None, _config(tmp_path, epochs=2, stop_after=1))
    bigger = toy_model(features=10)
    with pytest.raises(ValueError, match="does not fit the model"):
        fit(bigger, toy_data(32, features=10), None, _config(tmp_path, epochs=2, resume=True))


def test_metrics_files_and_tensorboard(tmp_path: Path) -> None:
    pytest.importorskip("torch.utils.tensorboard")
    result = fit(
        toy_model(),
        toy_data(32),
        toy_data(16, seed=1),
        _config(tmp_path, epochs=2, tensorboard=True),
    )
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert set(rows[0]) >= {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr"}
    assert float(rows[1]["test_accuracy"]) == result.history[1]["test_accuracy"]
    assert any((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"epoch": 1})

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]  # no temporary left over


def test_load_checkpoint_rejects_other_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt"):
        load_checkpoint(junk)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="format"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_mixed_precision_bfloat16_on_cpu(tmp_path: Path) -> None:
    result = fit(
        toy_model(dropout=0.0),
        toy_data(32),
        toy_data(16, seed=1),
        _config(tmp_path, epochs=3, amp=True),
    )
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in result.history)
    assert result.final_accuracy >= 0.75


@pytest.mark.cuda
def test_mixed_precision_float16_on_cuda(tmp_path: Path) -> None:
    result = fit(
        toy_model(dropout=0.0),
        toy_data(64),
        toy_data(32, seed=1),
        _config(tmp_path, device="cuda", amp=True),
    )
    assert result.final_accuracy >= 0.9
    assert load_checkpoint(tmp_path / "last.pt")["scaler"]["scale"] > 0


def test_batch_size_must_split_over_processes(tmp_path: Path, monkeypatch) -> None:
    from snn.training import distributed

    monkeypatch.setattr(distributed, "setup", lambda: distributed.DistInfo(0, 3, 0, False))
    with pytest.raises(ValueError, match="divisible"):
        fit(toy_model(), toy_data(32), None, _config(tmp_path, batch_size=16))


def test_mse_loss_and_max_readout_train(tmp_path: Path) -> None:
    result = fit(
        toy_model(),
        toy_data(64),
        toy_data(32, seed=1),
        _config(tmp_path, loss="mse", readout="max", optimizer="adamw"),
    )
    assert result.final_accuracy >= 0.8


def test_sync_batchnorm_needs_cuda(tmp_path: Path, monkeypatch) -> None:
    from snn.training import distributed

    monkeypatch.setattr(distributed, "setup", lambda: distributed.DistInfo(0, 2, 0, False))
    with pytest.raises(ValueError, match="sync_batchnorm needs CUDA"):
        fit(toy_model(), toy_data(32), None, _config(tmp_path, sync_batchnorm=True))
