"""Two processes launched with torchrun (gloo, CPU) train exactly like one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import snn

sys.path.insert(0, str(Path(__file__).parent))
from _toy import toy_data, toy_model

from snn.training import TrainConfig, fit, load_checkpoint
from snn.training.distributed import DistInfo, setup


def _run_group(cmd: list[str], env: dict[str, str], timeout: float = 300.0):
    """Run ``cmd`` in its own process group; on time-out kill the whole group (torchrun's
    workers included, which would otherwise keep the output pipes open forever) and fail."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{cmd} did not finish in {timeout} s:\n{out[-3000:]}{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


REPO = Path(__file__).resolve().parents[2]

WORKER = """
import sys
sys.path.insert(0, {toy_dir!r})
from _toy import toy_data, toy_model
from snn.training import TrainConfig, fit

config = TrainConfig(**{config!r})
fit(toy_model(dropout=0.0), toy_data(48), toy_data(20, seed=1), config)
"""


def _config(out_dir: Path) -> dict:
    return {
        "epochs": 3,
        "batch_size": 8,  # global: 4 per process on 2 processes
        "lr": 0.05,
        "out_dir": str(out_dir),
        "device": "cpu",
        "progress": False,
        "tensorboard": False,
    }


def _torchrun_then_single(tmp_path: Path, worker: str, config: dict):
    """Train with ``worker`` under torchrun (2 processes, gloo), then the same run in this
    process; returns the single-process result."""
    script = tmp_path / "worker.py"
    script.write_text(worker.format(toy_dir=str(Path(__file__).parent), config=config))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = _run_group([*cmd, str(script)], env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return fit(
        toy_model(dropout=0.0),
        toy_data(48),
        toy_data(20, seed=1),
        TrainConfig(**_config(tmp_path / "single")),
    )


@pytest.mark.slow
def test_torchrun_two_processes_equal_single_process(tmp_path: Path) -> None:
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    single = _torchrun_then_single(tmp_path, WORKER, _config(tmp_path / "ddp"))
    ddp = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert len(ddp["rng"]) == 2  # both processes' generators were saved
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(ddp["model"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    for row_ddp, row_single in zip(ddp["history"], single.history, strict=True):
        # every test sample is counted exactly once over the two shards
        assert row_ddp["test_accuracy"] == row_single["test_accuracy"]
        assert row_ddp["train_loss"] == pytest.approx(row_single["train_loss"], rel=1e-5)
    assert (tmp_path / "ddp" / "metrics.csv").is_file()


def test_setup_without_launcher_is_single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = setup()
    assert info == DistInfo() and info.is_main and not info.distributed
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        setup()


FSDP_WORKER = """
import os, sys
import torch
sys.path.insert(0, {toy_dir!r})
from _toy import toy_data, toy_model
import snn
from snn.training import TrainConfig, fit

config = TrainConfig(**{config!r})
# The group outlives fit (fit does not destroy a group it did not create), so the sharded model
# can still gather its parameters afterwards; re-creating a group after fit had destroyed its
# own left the model's collectives on the dead group and could hang.
torch.distributed.init_process_group("gloo")
rank = torch.distributed.get_rank()
result = fit(toy_model(dropout=0.0), toy_data(48), toy_data(20, seed=1), config)
# after training, each process runs its own samples: its neurons must hold their state
model = result.model
snn.reset(model)
x = toy_data(8, seed=3).tensors[0][rank::2].transpose(0, 1)
with torch.no_grad():
    out = model(x)
states = {{n: [s.clone() for s in m.state] for n, m in snn.neurons.neurons_of(model)}}
torch.save({{"out": out, "states": states}}, os.path.join(config.out_dir, f"rank{{rank}}.pt"))
torch.distributed.destroy_process_group()
"""


@pytest.mark.slow
def test_fsdp_two_processes_equal_single_process(tmp_path: Path) -> None:
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    config = {**_config(tmp_path / "fsdp"), "parallel": "fsdp"}
    single = _torchrun_then_single(tmp_path, FSDP_WORKER, config)
    sharded = load_checkpoint(tmp_path / "fsdp" / "last.pt")
    assert sharded["config"]["parallel"] == "fsdp"
    state = single.model.state_dict()
    assert sharded["model"].keys() == state.keys()  # full (gathered) weights in the checkpoint
    for name, value in state.items():
        torch.testing.assert_close(sharded["model"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    for row_fsdp, row_single in zip(sharded["history"], single.history, strict=True):
        assert row_fsdp["test_accuracy"] == row_single["test_accuracy"]
        assert row_fsdp["train_loss"] == pytest.approx(row_single["train_loss"], rel=1e-5)
    # neuron state on every process: that of its own samples, as a single process computes it
    model = single.model
    for rank in range(2):
        got = torch.load(tmp_path / "fsdp" / f"rank{rank}.pt")
        snn.reset(model)
        with torch.no_grad():
            out = model(toy_data(8, seed=3).tensors[0][rank::2].transpose(0, 1))
        torch.testing.assert_close(got["out"], out, rtol=1e-5, atol=1e-6)
        for name, neuron in snn.neurons.neurons_of(model):
            for a, b in zip(got["states"][name], neuron.state, strict=True):
                assert a.shape[0] == 4  # this process's 4 samples
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
