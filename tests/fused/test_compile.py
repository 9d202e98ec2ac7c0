"""The fused paths as PyTorch custom operators: ``torch.compile(fullgraph=True)`` traces a
Linear + LIF + LI model on ``backend="auto"`` without graph breaks, ``torch.export`` keeps
the operator, and ``torch.func`` transforms either work (auto: the reference) or fail with one
clear message (an explicit fused backend)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snn
from snn.backends import UnsupportedConfiguration, run_sequence_backend

pytest.importorskip("numba", reason="the fused CPU path needs numba (pip install 'snn[cpu]')")


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(snn.TimeDistributed(nn.Linear(8, 16)), snn.LIF(),
                         snn.TimeDistributed(nn.Linear(16, 4)), snn.LI())


class _Recorder:
    """A torch.compile backend that keeps the FX graphs it is given and runs them as is."""

    def __init__(self) -> None:
        self.graphs: list[torch.fx.GraphModule] = []

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list) -> object:
        self.graphs.append(gm)
        return gm.forward


def test_fullgraph_compile_runs_the_fused_operator_and_matches_eager():
    model = _model()
    x = torch.randn(10, 3, 8)
    ref = model(x)
    ref.square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    snn.reset(model)

    recorder = _Recorder()
    compiled = torch.compile(model, fullgraph=True, backend=recorder)
    out = compiled(x)
    out.square().sum().backward()
    assert len(recorder.graphs) == 1, "the model was split into several graphs"
    targets = [str(n.target) for n in recorder.graphs[0].graph.nodes]
    assert any("snn.fused_forward" in t for t in targets), targets
    torch.testing.assert_close(out, ref)
    for p, g in zip(model.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g)


def test_the_traced_graph_fills_no_memory_for_zero_states():
    """An initial state that starts at zero reaches the operator as an empty tensor (the
    operator makes the zeros), so the compiled graph holds no kernel that only fills memory
    (one more pass over every neuron's state, and a parallel region, per call)."""
    recorder = _Recorder()
    torch.compile(_model(), fullgraph=True, backend=recorder)(torch.randn(10, 3, 8))
    nodes = list(recorder.graphs[0].graph.nodes)
    fills = [(str(n.target), n.meta["example_value"].shape) for n in nodes
             if any(k in str(n.target) for k in ("zeros", "full", "fill"))]
    assert fills and all(shape.numel() == 1 for _, shape in fills), fills  # parameters only
    ops = [n for n in nodes if "snn.fused_forward" in str(n.target)]
    assert len(ops) == 2
    for op in ops:  # v0, i0, a0: empty
        assert all(a.meta["example_value"].numel() == 0 for a in op.args[5:8])


@pytest.mark.slow
def test_compile_with_aot_autograd_matches_eager():
    """Forward and backward through AOTAutograd (fake-tensor implementations and the
    registered autograd formula of the operators)."""
    model = _model()
    x = torch.randn(10, 3, 8)
    ref = model(x)
    ref.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    snn.reset(model)
    out = torch.compile(model, fullgraph=True, backend="aot_eager")(x)
    out.sum().backward()
    torch.testing.assert_close(out, ref)
    for p, g in zip(model.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g)


def test_export_keeps_the_fused_operator():
    class Run(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = _model()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            snn.reset(self.net)
            return self.net(x)

    run = Run()
    x = torch.randn(10, 3, 8)
    program = torch.export.export(run, (x,))
    ops = [str(n.target) for n in program.graph.nodes]
    assert sum("snn.fused_forward" in t for t in ops) == 2  # LIF and LI
    y = torch.randn(10, 3, 8)
    torch.testing.assert_close(program.module()(y), run(y))


def test_func_transforms_use_the_reference_on_auto_and_refuse_clearly_on_fused():
    x = torch.randn(6, 3, 4)

    def loss(backend: str):
        return lambda z: run_sequence_backend("lif", backend, z, None, False,
                                              {"beta": 0.9}).spikes.sum()

    torch.testing.assert_close(torch.func.grad(loss("auto"))(x), torch.func.grad(loss("torch"))(x))
    with pytest.raises(UnsupportedConfiguration, match=r"torch\.func transforms"):
        torch.func.grad(loss("numba"))(x)
    batched = torch.func.vmap(lambda z: snn.functional.ilif_sequence(z).spikes)(
        torch.randn(2, 6, 3, 4))
    assert batched.shape == (2, 6, 3, 4)
