"""Cross-checks against sinabs' synaptic-operation hooks and NeuroBench's workload metrics on the
same network and input.

Agreements and the documented differences:

- sinabs counts, per Conv2d/Linear call, ``sum(input * connection_map)`` where the connection
  map is the fan-out of every input element through *all* weights (a transposed convolution of
  ones). For binary spikes this is our ``acs`` with ``nonzero_weights_only=False``: equal. For
  inputs that are not binary sinabs weights the fan-out by the input value (it assumes spike
  counts) where we count effective MACs (each nonzero input once); and sinabs scales the layer
  after an ``AvgPool2d`` by the kernel area (sum-pooling of spikes), where our next layer sees
  graded values and counts MACs. Those cases are not compared.
- NeuroBench's ``SynapticOperations`` binarises the inputs and the weights (zero weights do not
  count) and classifies a call as ACs when every input is -1, 0 or 1, otherwise MACs: our
  ``acs``, ``macs`` and ``dense_synops`` per sample with the default
  ``nonzero_weights_only=True``: equal, including a non-binary first layer and pruned weights.
  ``ActivationSparsity`` and ``Footprint`` match ours when the model's activations are spiking
  neurons.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snn
from snn.energy import count_ops, neurobench_metrics
from snn.neurons.base import BaseNeuron


def network(prune: bool = False) -> nn.Sequential:
    torch.manual_seed(3)
    net = nn.Sequential(
        snn.TimeDistributed(nn.Conv2d(2, 8, 3, stride=2, padding=1)),
        snn.IF(threshold=0.5),
        snn.TimeDistributed(nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.MaxPool2d(2)),
        snn.IF(threshold=0.5),
        snn.TimeDistributed(nn.Flatten(), nn.Linear(8 * 4 * 4, 10)),
        snn.IF(threshold=0.5),
    )
    if prune:
        with torch.no_grad():
            for p in net.parameters():
                if p.dim() > 1:
                    p[p.abs() < 0.1] = 0.0
    return net


def spike_input(steps: int = 6, batch: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return (torch.rand(steps, batch, 2, 16, 16, generator=g) < 0.3).float()


SYNAPTIC = ("0.0", "2.0", "4.1")  # the Conv2d, grouped Conv2d and Linear layers


def test_sinabs_synops_equal_on_spikes():
    hooks = pytest.importorskip(
        "sinabs.hooks", reason="sinabs is not installed (pip install sinabs)"
    )
    x = spike_input()
    ours = count_ops(network(), x, nonzero_weights_only=False)

    net = network()  # sinabs writes hook_data onto the modules: use a separate copy
    modules = dict(net.named_modules())
    for name in SYNAPTIC:
        layer = modules[name]
        hook = (hooks.conv_layer_synops_hook if isinstance(layer, nn.Conv2d)
                else hooks.linear_layer_synops_hook)
        layer.register_forward_hook(hook)
    with torch.no_grad():
        net(x)
    folded = x.shape[0] * x.shape[1]  # TimeDistributed folds T*B into the batch sinabs averages
    compared = 0
    for name in SYNAPTIC:
        sinabs_total = float(modules[name].hook_data["layer_synops_per_timestep"]) * folded
        layer = ours.layer(name)
        assert layer.macs == 0
        assert layer.acs == pytest.approx(sinabs_total, rel=1e-5), name
        compared += layer.acs > 0
    assert compared == len(SYNAPTIC)  # spikes reached every layer: the check is not vacuous


def neurobench_run(net: nn.Module, x: torch.Tensor):
    models = pytest.importorskip(
        "neurobench.models", reason="neurobench is not installed (pip install neurobench)"
    )
    from neurobench.metrics.static import Footprint
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations

    wrapped = models.TorchModel(net)
    wrapped.add_activation_module(BaseNeuron)
    wrapped.register_hooks()
    try:
        with torch.no_grad():
            preds = wrapped(x)
        data = (x.transpose(0, 1), torch.zeros(x.shape[1]))  # NeuroBench counts data[0].size(0)
        synops = SynapticOperations()(wrapped, preds, data)
        sparsity = ActivationSparsity()(wrapped, preds, data)
        footprint = Footprint()(wrapped)
    finally:
        wrapped.cleanup_hooks()
    return synops, sparsity, footprint


@pytest.mark.parametrize("prune", [False, True])
@pytest.mark.parametrize("graded_input", [False, True])
def test_neurobench_metrics_equal(prune, graded_input):
    x = spike_input()
    if graded_input:  # a non-binary first layer: MACs there, ACs after the first neurons
        x = x * torch.rand(x.shape, generator=torch.Generator().manual_seed(1))
    ours = neurobench_metrics(count_ops(network(prune), x))
    synops, sparsity, footprint = neurobench_run(network(prune), x)
    assert synops["Effective_ACs"] == pytest.approx(ours["effective_acs"], rel=1e-12)
    assert synops["Effective_MACs"] == pytest.approx(ours["effective_macs"], rel=1e-12)
    assert synops["Dense"] == pytest.approx(ours["dense"], rel=1e-12)
    assert (ours["effective_macs"] > 0) == graded_input
    assert ours["effective_acs"] > 0
    assert sparsity == pytest.approx(ours["activation_sparsity"], rel=1e-12)
    assert footprint == ours["footprint"]
