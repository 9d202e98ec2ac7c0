"""Hand-counted operation counts of small Linear, Conv and pooling models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snn
from snn.energy import CountingError, OpCounter, count_ops, is_binary
from snn.neurons import NEURONS, create_neuron


def spikes_at(shape, positions) -> torch.Tensor:
    x = torch.zeros(shape)
    for p in positions:
        x[p] = 1.0
    return x


# -- Linear --------------------------------------------------------------------------------------
def test_linear_hand_counted():
    layer = nn.Linear(4, 3)
    model = snn.TimeDistributed(layer)
    # T=2, B=1: three spikes in total (features 0 and 2 at t=0, feature 3 at t=1)
    x = spikes_at((2, 1, 4), [(0, 0, 0), (0, 0, 2), (1, 0, 3)])
    c = count_ops(model, x).layer("0")
    assert c.kind == "synaptic"
    assert c.acs == 3 * 3 and c.macs == 0
    assert c.dense_macs == c.dense_synops == 2 * 4 * 3
    # memory model: one event read per spike, per AC one weight read and a read+write of the
    # target accumulator
    assert (c.input_reads, c.weight_reads, c.state_reads, c.state_writes) == (3, 9, 9, 9)
    assert (c.inputs, c.input_nonzero, c.outputs) == (8, 3, 6)


def test_linear_zero_weights_are_not_synapses():
    layer = nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight[0, 0] = 0.0  # input 0 -> output 0 pruned
        layer.weight[2, 0] = 0.0  # input 0 -> output 2 pruned
    x = spikes_at((1, 4), [(0, 0), (0, 1)])
    assert count_ops(layer, x).layer("").acs == 1 + 3
    assert count_ops(layer, x, nonzero_weights_only=False).layer("").acs == 3 + 3


def test_graded_input_counts_effective_macs():
    layer = nn.Linear(5, 2)
    x = torch.tensor([[0.5, 0.0, -2.0, 0.0, 0.25]])
    c = count_ops(layer, x).layer("")
    assert (c.macs, c.acs) == (3 * 2, 0)
    # frame-based memory: weight and input read per MAC, one write per output
    assert (c.weight_reads, c.input_reads, c.output_writes) == (6, 6, 2)


def test_signed_and_boolean_spikes_are_binary():
    layer = nn.Linear(3, 2)
    assert count_ops(layer, torch.tensor([[1.0, -1.0, 0.0]])).layer("").acs == 4
    assert is_binary(torch.tensor([True, False]))
    assert is_binary(torch.tensor([0, 1, -1]))
    assert not is_binary(torch.tensor([0.0, 2.0]))


# -- Conv ----------------------------------------------------------------------------------------
def test_conv_padding_borders():
    conv = nn.Conv2d(1, 2, 3, padding=1)
    # corner reaches 4 output positions, edge 6, centre 9; two output channels each
    x = spikes_at((1, 1, 4, 4), [(0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 1)])
    c = count_ops(conv, x).layer("")
    assert c.acs == 2 * (4 + 6 + 9)
    assert c.dense_macs == (2 * 4 * 4) * 9  # every output times 9 taps, padding included
    per_channel = 4 * 4 + 8 * 6 + 4 * 9  # sum of the fan-out map of a 4x4 input
    assert c.dense_synops == 2 * per_channel


def test_conv_stride_skips_inputs():
    conv = nn.Conv2d(1, 3, 3, stride=2)  # 6x6 input -> 2x2 output, windows start at 0 and 2
    # per-dimension coverage of rows/cols 0..5: 1, 1, 2, 1, 1, 0
    x = spikes_at((1, 1, 6, 6), [(0, 0, 2, 2), (0, 0, 0, 4), (0, 0, 5, 5), (0, 0, 5, 0)])
    c = count_ops(conv, x).layer("")
    assert c.acs == 3 * (2 * 2 + 1 * 1 + 0 + 0)
    assert c.dense_macs == 3 * 2 * 2 * 9


@pytest.mark.parametrize(("groups", "out_channels"), [(1, 4), (2, 4), (4, 8)])
def test_conv_groups(groups, out_channels):
    conv = nn.Conv2d(4, out_channels, 3, padding=1, groups=groups)
    x = spikes_at((1, 4, 5, 5), [(0, 0, 2, 2), (0, 3, 0, 0)])  # centre and corner spikes
    c = count_ops(conv, x).layer("")
    per_input = out_channels // groups  # output channels each input channel reaches
    assert c.acs == per_input * (9 + 4)
    assert c.dense_macs == out_channels * 25 * (4 // groups) * 9


def test_conv_batch_and_time_fold():
    conv = nn.Conv1d(2, 3, 3, padding=1)
    model = snn.TimeDistributed(conv)
    x = torch.zeros(3, 2, 2, 5)  # [T, B, C, L]
    x[0, 0, 0, 0] = 1  # border: 2 positions
    x[2, 1, 1, 2] = 1  # inside: 3 positions
    assert count_ops(model, x).layer("0").acs == 3 * (2 + 3)


def brute_force_fanout(conv: nn.Module, shape: tuple[int, ...], nonzero_only: bool) -> torch.Tensor:
    """Fan-out of each input element by pushing every unit vector through the convolution with
    the weight mask: independent of the counter's method."""
    w = conv.weight.detach()
    mask = (w != 0).double() if nonzero_only else torch.ones_like(w, dtype=torch.float64)
    n = torch.Size(shape).numel()
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    with torch.no_grad():
        out = conv._conv_forward(basis, mask, None)
    return out.reshape(n, -1).sum(1).reshape(shape)


CONV_CASES = [
    (nn.Conv1d, dict(kernel_size=3, padding=2, dilation=2), (2, 9)),
    (nn.Conv1d, dict(kernel_size=4, stride=3, padding_mode="reflect", padding=2), (2, 11)),
    (nn.Conv2d, dict(kernel_size=3, stride=2, padding=1), (2, 7, 6)),
    (nn.Conv2d, dict(kernel_size=(1, 3), padding="same", padding_mode="circular"), (2, 4, 5)),
    (nn.Conv2d, dict(kernel_size=2, stride=1, padding=0, groups=2), (2, 5, 5)),
    (nn.Conv2d, dict(kernel_size=3, padding=1, padding_mode="replicate"), (2, 5, 4)),
    (nn.Conv3d, dict(kernel_size=2, stride=(1, 2, 2), padding=1), (2, 3, 4, 4)),
]


@pytest.mark.parametrize(("cls", "kwargs", "shape"), CONV_CASES)
@pytest.mark.parametrize("nonzero_only", [True, False])
def test_conv_counts_match_brute_force(cls, kwargs, shape, nonzero_only):
    conv = cls(2, 4, **kwargs)
    with torch.no_grad():
        conv.weight[conv.weight.abs() < 0.15] = 0.0  # prune some synapses
    x = (torch.rand(3, *shape) < 0.3).float()
    fan = brute_force_fanout(conv, shape, nonzero_only)
    expected = float(((x != 0).double().sum(0) * fan).sum())
    c = count_ops(conv, x, nonzero_weights_only=nonzero_only).layer("")
    assert c.acs == round(expected)
    dense = brute_force_fanout(conv, shape, nonzero_only=False).sum() * 3
    assert c.dense_synops == round(float(dense))


# -- pooling -------------------------------------------------------------------------------------
def test_max_pool_windows_with_padding():
    pool = nn.MaxPool2d(3, stride=2, padding=1)  # 5x5 -> 3x3; coverage per dim 1, 2, 1, 2, 1
    x = spikes_at((1, 1, 5, 5), [(0, 0, 1, 1), (0, 0, 0, 0), (0, 0, 1, 2)])
    c = count_ops(pool, x).layer("")
    assert c.kind == "pool"
    assert c.other_adds == 4 + 1 + 2
    assert c.dense_other_adds == (1 + 2 + 1 + 2 + 1) ** 2
    assert c.acs == c.macs == 0  # pooling is not a synaptic operation


def test_avg_pool_of_spikes_feeds_events_to_next_layer():
    model = nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4, 3))
    x = spikes_at((1, 1, 4, 4), [(0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 3, 3)])
    counts = count_ops(model, x)
    assert counts.layer("0").other_adds == 3
    fc = counts.layer("2")
    # pooled values 0.5 and 0.25 are 2 and 1 spikes times 1/4, which folds into the weights:
    # three events times fan-out 3, as accumulates (sum pooling, as sinabs counts it)
    assert (fc.acs, fc.macs) == (3 * 3, 0)
    assert counts.layer("1").kind == "free"


def test_adaptive_pool_windows():
    pool = nn.AdaptiveAvgPool1d(2)  # length 3 -> windows [0, 2) and [1, 3): element 1 in both
    x = spikes_at((1, 1, 3), [(0, 0, 1), (0, 0, 2)])
    assert count_ops(pool, x).layer("").other_adds == 2 + 1


def test_max_pool_with_dilation_is_uncounted():
    pool = nn.MaxPool2d(2, dilation=2)
    counts = count_ops(pool, torch.ones(1, 1, 6, 6))
    assert counts.layer("").kind == "uncounted"
    assert any("dilation" in line for line in counts.uncounted)


# -- neurons, time and zero input ------------------------------------------------------------------
def small_snn(step_mode: str = "sequence", bias: bool = True) -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(
        snn.TimeDistributed(nn.Conv2d(2, 4, 3, padding=1, bias=bias)),
        snn.LIF(threshold=0.2, step_mode=step_mode),
        snn.TimeDistributed(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 5, bias=bias)),
        snn.LI(step_mode=step_mode),
    )


def test_zero_input_gives_zero_synaptic_operations():
    model = small_snn(bias=False)
    counts = count_ops(model, torch.zeros(6, 3, 2, 8, 8))
    assert counts.total("acs") == counts.total("macs") == 0
    assert counts.total("spikes") == 0
    assert counts.total("other_adds") == 0
    assert counts.total("dense_macs") > 0  # the dense network still has work
    assert counts.total("neuron_updates") == 6 * 3 * (4 * 8 * 8 + 5)
    assert counts.total("active_updates") == 0


def test_zero_input_with_bias_drives_later_layers():
    # a bias is a constant input current: the first layer does no synaptic work, but the
    # neurons it feeds may still fire, and their spikes cost synaptic operations downstream
    counts = count_ops(small_snn(bias=True), torch.zeros(6, 3, 2, 8, 8))
    assert counts.layer("0.0").acs == counts.layer("0.0").macs == 0
    lif = counts.layer("1")
    assert lif.active_updates == lif.neuron_updates  # every neuron receives its bias
    if lif.spikes:
        assert counts.layer("2.2").synops > 0


def test_neuron_counts_match_outputs_and_spikes_drive_next_layer():
    model = small_snn()
    x = (torch.rand(5, 2, 2, 8, 8) < 0.3).float()
    with snn.Monitor(model, layers=["1"]) as mon:
        model(x)
    snn.reset(model)
    spikes = mon.spikes("1")
    counts = count_ops(model, x)
    lif = counts.layer("1")
    assert lif.spikes == int(spikes.sum()) > 0
    assert lif.neuron_updates == spikes.numel()
    assert lif.state_vars == 1
    pool = counts.layer("2.0")
    assert pool.input_nonzero == lif.spikes  # every spike enters exactly one 2x2 window
    assert counts.steps == 5 and counts.samples == 2
    assert counts.functional == {}  # TimeDistributed only reshapes: nothing left uncounted
    expected_sparsity = 1 - lif.spikes / spikes.numel()
    assert counts.activation_sparsity == pytest.approx(expected_sparsity)


def test_single_step_mode_counts_equal_sequence_mode():
    x = (torch.rand(4, 2, 2, 8, 8) < 0.3).float()
    seq_model = small_snn("sequence")
    seq = count_ops(seq_model, x)
    # the same network, one step [B, ...] per call
    single_model = nn.Sequential(
        seq_model[0][0], snn.LIF(threshold=0.2, step_mode="single"), nn.MaxPool2d(2),
        nn.Flatten(), seq_model[2][2], snn.LI(step_mode="single"),
    )
    counter = OpCounter(single_model)
    with counter, torch.no_grad():
        for t in range(4):
            single_model(x[t])
    single = counter.counts()
    assert single.steps == 4 and single.samples == 2
    for a, b in (("0.0", "0"), ("1", "1"), ("2.0", "2"), ("2.2", "4"), ("3", "5")):
        la, lb = seq.layer(a), single.layer(b)
        for field in ("acs", "macs", "dense_macs", "neuron_updates", "spikes", "other_adds"):
            assert getattr(la, field) == getattr(lb, field), (a, field)
    assert seq.layer("1").spikes > 0


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_every_registered_neuron_is_counted(name):
    neuron = create_neuron(name)
    x = torch.rand(4, 3, 6) * 2
    with torch.no_grad():
        out = neuron(x)
    snn.reset(neuron)
    counts = count_ops(neuron, x)
    layer = counts.layer("")
    assert layer.kind == "neuron"
    assert layer.neuron_updates == x.numel()
    assert layer.active_updates == int((x != 0).sum())
    assert layer.state_vars == len(neuron.state)
    if neuron.spiking:
        assert layer.spikes == int((out != 0).sum())
    else:
        assert layer.spikes == 0


def test_plain_ann_samples_and_steps():
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    counts = count_ops(model, torch.randn(7, 6))
    assert counts.steps == 1 and counts.samples == 7
    assert counts.layer("0").macs == 7 * 6 * 4  # dense Gaussian input: nothing skipped
    assert counts.layer("1").kind == "activation"
    assert counts.layer("1").other_adds == 7 * 4
    assert not counts.spiking


# -- bad input and hygiene ------------------------------------------------------------------------
def test_unknown_layers_are_uncounted_never_zero():
    model = nn.Sequential(nn.Linear(3, 3), nn.GELU(), nn.Linear(3, 2))
    counts = count_ops(model, torch.randn(2, 3))
    gelu = counts.layer("1")
    assert gelu.kind == "uncounted" and gelu.calls == 1
    assert counts.uncounted == ["1 (GELU): no counting rule for GELU"]


def test_functional_arithmetic_outside_modules_is_listed():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) + x

    counts = count_ops(Residual(), torch.randn(2, 4))
    assert counts.layer("fc").macs == 2 * 16
    assert counts.functional == {"<model>: add": 1}
    assert counts.uncounted == ["<model>: add x1: torch function outside any module"]


def test_mismatched_input_shape_names_the_layer():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(CountingError, match=r"module '2' \(Linear\).*\(2, 4\)"):
        count_ops(model, torch.randn(2, 4))
    with pytest.raises(ValueError):  # CountingError is a ValueError
        count_ops(model, torch.randn(2, 7))


def test_counter_removes_hooks_and_writes_no_attributes():
    model = small_snn()
    before = {n: set(vars(m)) for n, m in model.named_modules()}
    with OpCounter(model) as counter:
        model(torch.rand(3, 1, 2, 8, 8))
    assert counter.counts().calls == 1
    for name, module in model.named_modules():
        assert set(vars(module)) == before[name]
        assert not module._forward_hooks and not module._forward_pre_hooks
    from torch.overrides import _get_current_function_mode_stack

    assert not _get_current_function_mode_stack()
    with pytest.raises(RuntimeError, match="no forward pass"):
        OpCounter(model).counts()


def test_reset_and_reuse():
    layer = nn.Linear(2, 2)
    counter = OpCounter(layer)
    with counter:
        layer(torch.ones(1, 2))
        assert counter.counts().total("acs") == 4
        counter.reset()
        layer(torch.ones(3, 2))
    assert counter.counts().total("acs") == 12
    with pytest.raises(TypeError):
        OpCounter("not a model")


@pytest.mark.cuda
def test_counts_on_cuda_equal_cpu():
    model = small_snn()
    x = (torch.rand(4, 2, 2, 8, 8) < 0.3).float()
    cpu = count_ops(model, x)
    snn.reset(model)
    gpu = count_ops(model.cuda(), x.cuda())
    for a, b in zip(cpu.layers, gpu.layers):
        assert a.to_dict() == b.to_dict()
