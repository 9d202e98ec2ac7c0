"""The SpikeGPT character recipe (benchmarks/recipe_spikegpt_chars.py) on a few steps."""

from __future__ import annotations

import json
import math

import pytest
import torch
from bench_scripts import import_benchmark


def test_vocabulary_and_splits():
    recipe = import_benchmark("recipe_spikegpt_chars")
    assert recipe.VOCAB_SIZE == 98
    text = "def f(x):\n\treturn x  # é"
    tokens = recipe.encode(text)
    assert recipe.decode(tokens) == text[:-1] + "\ufffd"
    split = recipe.stdlib_splits()
    names = [{p.name for p in v} for v in split.values()]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert split == recipe.stdlib_splits()  # deterministic
    # unigram cross-entropy of a text under its own counts is near its entropy, below log2(V)
    data = recipe.encode(recipe.read_text(split["test"], 5000))
    assert 2.0 < recipe.unigram_bpc(data, data) < math.log2(recipe.VOCAB_SIZE)


@pytest.mark.slow
def test_recipe_writes_a_record_with_a_table_row(tmp_path):
    recipe = import_benchmark("recipe_spikegpt_chars")
    out = tmp_path / "r.json"
    args = ["--out", str(out), "--steps", "3", "--dim", "8", "--layers", "1", "--batch", "2",
            "--ctx", "16", "--eval-chars", "400", "--window", "32",
            "--models", "spiking_rwkv,gru"]
    threads = torch.get_num_threads()
    numba = pytest.importorskip("numba")
    numba_threads = numba.get_num_threads()
    try:
        assert recipe.main([*args, "--threads", "1"]) == 0
    finally:  # the recipe sets the process's thread counts
        torch.set_num_threads(threads)
        numba.set_num_threads(numba_threads)
    record = json.loads(out.read_text())
    assert isinstance(record["torch_threads"], int) and record["load_average_at_start"]
    for name in ("spiking_rwkv", "gru"):
        m = record["models"][name]
        assert math.isfinite(m["test_bpc"]) and m["steps"] == 3
    assert record["sample"]["text"].startswith(recipe.PROMPT)
    assert len(record["sample"]["text"]) == len(recipe.PROMPT) + 200
    table = import_benchmark("readme_table")
    kind = table.record_kind(record)
    assert kind == "spikegpt_chars"
    (row,) = table.ROWS[kind](record, "r.json")
    assert f"{record['models']['spiking_rwkv']['test_bpc']:.2f}" in row[1]
