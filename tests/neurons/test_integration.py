"""The neuron modules under torch.compile and DistributedDataParallel."""

from __future__ import annotations

import io

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import snn


def _model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        snn.TimeDistributed(nn.Linear(6, 12)),
        snn.LIF(beta=0.8, backend="torch"),
        snn.TimeDistributed(nn.Linear(12, 12)),
        snn.CubaLIF(backend="torch"),
        snn.TimeDistributed(nn.Linear(12, 3)),
        snn.LI(backend="torch"),
    )


@pytest.mark.slow
def test_torch_compile_matches_eager() -> None:
    eager, compiled_model = _model(), _model()
    compiled = torch.compile(compiled_model)
    x = torch.rand(6, 4, 6)
    for _ in range(2):  # the second call continues from the kept state
        out_e = eager(x)
        out_c = compiled(x)
        torch.testing.assert_close(out_c, out_e, rtol=1e-5, atol=1e-5)
    out_e.sum().backward()
    out_c.sum().backward()
    for (name, pe), (_, pc) in zip(
        eager.named_parameters(), compiled_model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(pc.grad, pe.grad, rtol=1e-4, atol=1e-5, msg=name)


def _ddp_worker(rank: int, world: int, store: str, x: torch.Tensor, queue) -> None:
    # A file store, not a TCP port: a port found free here can be taken by another process
    # before the ranks bind it, which failed this test by chance on a busy machine.
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        model = nn.parallel.DistributedDataParallel(_model())
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(2):
            snn.reset(model)
            opt.zero_grad()
            model(x[:, rank::world]).pow(2).mean().backward()
            opt.step()
        if rank == 0:
            buf = io.BytesIO()
            torch.save(model.module.state_dict(), buf)
            queue.put(buf.getvalue())
    finally:
        dist.destroy_process_group()


def _shard_loss(model: nn.Module, x: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    snn.reset(model)  # each shard starts from the initial state, as on its own rank
    return model(x[:, rank::world]).pow(2).mean()


@pytest.mark.slow
def test_ddp_two_processes_equal_single_process_training(tmp_path) -> None:
    """DDP averages the ranks' gradients: two processes on two shards train exactly like one
    process minimising the mean of the two shard losses."""
    x = torch.rand(5, 8, 6)
    ref = _model()
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    for _ in range(2):
        opt.zero_grad()
        ((_shard_loss(ref, x, 0, 2) + _shard_loss(ref, x, 1, 2)) / 2).backward()
        opt.step()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    store = str(tmp_path / "store")
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, store, x, queue)) for r in range(2)]
    for p in procs:
        p.start()
    # Generous hang guards: two spawned interpreters import torch, slow on a loaded machine.
    result = torch.load(io.BytesIO(queue.get(timeout=600)))
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(result[key], value, rtol=1e-5, atol=1e-6, msg=key)
