"""The training loop in a user's hands: reproducibility across progress bars, workers and
logging; non-finite gradients; warnings and messages of ``snn train``."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _toy import toy_data, toy_model

import snn
from snn.training import TrainConfig, fit


def _config(tmp_path: Path, **kw) -> TrainConfig:
    options = {
        "epochs": 2,
        "batch_size": 8,
        "lr": 0.05,
        "out_dir": str(tmp_path),
        "device": "cpu",
        "progress": False,
        "tensorboard": False,
    }
    return TrainConfig(**{**options, **kw})


def _weights(tmp_path: Path, **kw) -> dict[str, torch.Tensor]:
    # dropout on: the global random stream decides the masks, so any extra draw shows
    result = fit(toy_model(dropout=0.3), toy_data(32), toy_data(8, seed=1), _config(tmp_path, **kw))
    return result.model.state_dict()


@pytest.mark.slow
def test_same_weights_with_or_without_progress_workers_and_logging(tmp_path: Path) -> None:
    pytest.importorskip("tqdm")
    reference = _weights(tmp_path / "plain")
    variants = {
        "progress": {"progress": True},
        "workers": {"num_workers": 1},
        "tensorboard": {"tensorboard": True},
    }
    for name, options in variants.items():
        if name == "tensorboard":
            pytest.importorskip("torch.utils.tensorboard")
        weights = _weights(tmp_path / name, **options)
        for key, value in reference.items():
            assert torch.equal(weights[key], value), f"{name}: {key}"


def test_progress_bar_draws_nothing_from_the_loader(tmp_path: Path, monkeypatch) -> None:
    # the cause of the difference: wrapping the loader in tqdm.auto created a second loader
    # iterator, and each iterator draws a seed; the bar must only display
    pytest.importorskip("tqdm")
    import torch.utils.data.dataloader as dataloader

    created = []
    original = dataloader._BaseDataLoaderIter.__init__

    def counting(self, loader):
        created.append(loader)
        original(self, loader)

    monkeypatch.setattr(dataloader._BaseDataLoaderIter, "__init__", counting)
    fit(toy_model(), toy_data(16), None, _config(tmp_path, epochs=1, progress=True))
    assert len(created) == 1  # one training iterator for the one epoch


class _Poison(nn.Module):
    """Makes the gradient of the layer before it NaN on chosen calls."""

    def __init__(self, bad_calls: set[int]):
        super().__init__()
        self.bad_calls, self.calls = bad_calls, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.training and self.calls in self.bad_calls:
            return x * torch.tensor(float("nan"))
        return x


@pytest.mark.parametrize("amp", ["", "bfloat16"])
def test_non_finite_gradients_skip_the_step_with_a_warning(tmp_path: Path, amp: str) -> None:
    torch.manual_seed(0)
    first = snn.TimeDistributed(nn.Linear(8, 16))
    model = nn.Sequential(
        first, _Poison({2}), snn.LIF(), snn.TimeDistributed(nn.Linear(16, 2)), snn.LI()
    )
    data = toy_data(32)
    snapshots = []
    model[3].register_forward_pre_hook(lambda m, a: snapshots.append(m[0].weight.clone()))
    config = _config(tmp_path, epochs=1, optimizer="sgd", amp=bool(amp), amp_dtype=amp)
    with pytest.warns(RuntimeWarning, match=r"non-finite gradients in 0\.0\.weight, 0\.0\.bias"):
        result = fit(model, data, None, config)
    assert result.history[0]["skipped_steps"] == 1
    # the step after the poisoned batch was skipped: the weights seen by batch 3 are those of
    # batch 2, and every weight stayed finite
    assert torch.equal(snapshots[1], snapshots[2]) and not torch.equal(snapshots[0], snapshots[1])
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_rerun_into_existing_out_dir_warns_and_resume_says_the_epoch(tmp_path, capsys) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fresh folder: no warning
        fit(toy_model(), toy_data(16), None, _config(tmp_path, epochs=2, stop_after=1))
    out = capsys.readouterr().out
    # one line per epoch even without progress bars
    assert sum(line.startswith("epoch 1/2") for line in out.splitlines()) == 1
    with pytest.warns(UserWarning, match=r"last\.pt exists.*--resume"):
        fit(toy_model(), toy_data(16), None, _config(tmp_path, epochs=1))
    capsys.readouterr()
    fit(toy_model(), toy_data(16), None, _config(tmp_path, epochs=3, resume=True))
    out = capsys.readouterr().out
    assert "resuming from" in out and "after epoch 1/3" in out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("epoch")] == [
        "2/3",
        "3/3",
    ]


def test_silent_network_warning_names_the_layers(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        snn.TimeDistributed(nn.Linear(8, 16)),
        snn.LIF(),
        snn.TimeDistributed(nn.Linear(16, 16)),
        snn.LIF(threshold=1e6),  # never reaches its threshold
        snn.TimeDistributed(nn.Linear(16, 2)),
        snn.LI(),
    )
    with pytest.warns(RuntimeWarning, match=r"no spike at all in layer\(s\) 3;"):
        fit(model, toy_data(16), None, _config(tmp_path, epochs=1))
