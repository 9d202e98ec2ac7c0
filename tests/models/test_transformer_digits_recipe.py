"""The Spikformer event-digits recipe (benchmarks/recipe_transformer_digits_events.py): its
augmentation, schedule and validation split, and a tiny run that writes a record."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from bench_scripts import import_benchmark


def test_shift_moves_whole_samples_and_keeps_their_events():
    recipe = import_benchmark("recipe_transformer_digits_events")
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 4, 2, 17, 17)
    x[:, :, :, 8, 8] = 1.0  # one event per frame and polarity, in the middle
    out = recipe.augment(x, 2, 0.0, g)
    assert out.shape == x.shape
    assert torch.equal(out.sum((1, 2, 3, 4)), x.sum((1, 2, 3, 4)))  # nothing falls off
    pos = out[:, 0, 0].flatten(1).argmax(1)
    dy, dx = pos // 17 - 8, pos % 17 - 8
    assert dy.abs().max() == 2 and dx.abs().max() == 2 and len(set(pos.tolist())) > 5
    # every frame and polarity of a sample moves together
    assert torch.equal(out[:, :, :, :, :].flatten(3).argmax(3), pos[:, None, None].expand(-1, 4, 2))


def test_event_drop_thins_counts():
    recipe = import_benchmark("recipe_transformer_digits_events")
    g = torch.Generator().manual_seed(0)
    x = torch.full((8, 4, 2, 17, 17), 3.0)
    out = recipe.augment(x, 0, 0.25, g)
    assert torch.all(out <= x) and torch.all(out == out.round())
    assert abs(out.mean().item() - 3 * 0.75) < 0.05
    assert torch.equal(recipe.augment(x, 0, 0.0, g), x)


def test_schedule_warms_up_then_anneals_to_zero():
    recipe = import_benchmark("recipe_transformer_digits_events")
    lrs = [recipe.lr_at(s, 100, 10, 1.0) for s in range(101)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert lrs[100] == pytest.approx(0.0, abs=1e-12)


def test_validation_split_is_disjoint_and_seeded():
    recipe = import_benchmark("recipe_transformer_digits_events")
    data = torch.utils.data.TensorDataset(torch.arange(100.0)[:, None], torch.arange(100))
    train, val = recipe.validation_split(data, 3)
    a, b = set(train.tensors[1].tolist()), set(val.tensors[1].tolist())
    assert len(b) == 20 and not a & b and len(a | b) == 100
    assert torch.equal(recipe.validation_split(data, 3)[1].tensors[1], val.tensors[1])
    assert not torch.equal(recipe.validation_split(data, 4)[1].tensors[1], val.tensors[1])


def test_unknown_setting_is_refused():
    recipe = import_benchmark("recipe_transformer_digits_events")
    assert recipe.parse_set(["lr=0.001", "loss=tet"]) == {"lr": 0.001, "loss": "tet"}
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        recipe.parse_set(["learning_rate=1"])


@pytest.mark.slow
def test_tiny_run_writes_a_record_with_a_table_row(tmp_path):
    recipe = import_benchmark("recipe_transformer_digits_events")
    out = tmp_path / "r.json"
    threads = torch.get_num_threads()
    try:
        code = recipe.main([
            "--out", str(out), "--root", str(tmp_path / "data"), "--val", "--threads", "1",
            "--set", "epochs=1", "--set", "embed_dim=16", "--set", "num_heads=2",
            "--set", "steps=2", "--limit", "64",
        ])
    finally:
        torch.set_num_threads(threads)
    record = json.loads(out.read_text())
    assert code == (0 if record["passed"] else 1)
    assert record["evaluated_on"].startswith("validation")
    assert record["torch_threads"] == 1 and record["load_average_at_start"]
    (run,) = record["seeds"]
    assert run["train_samples"] == 64 and len(run["history"]) == 1
    assert 0.0 <= run["test_accuracy"] <= 1.0
    table = import_benchmark("readme_table")
    kind = table.record_kind(record)
    assert kind == "recipe"
    (row,) = table.ROWS[kind](record, "r.json")
    assert "transformer-digits-events" in row[0]
