"""Spiking LMUFormer: the published Speech Commands size, spike-only synaptic inputs, the
bounded look-ahead of its patch embedding, energy counting and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snn
from snn.energy import EnergyReport, count_ops
from snn.models import LMUFormer, create_model
from snn.models.lmuformer import SequenceConv1d


def _parameters_by_hand(features: int, dim: int, classes: int, ratio: int = 4) -> int:
    bn = 2  # weight and bias per channel
    embed = features * dim * 3 + 4 * dim * dim * 3 + 4 * bn * dim  # 5 convs, 4 norms
    order = 2 * dim
    lmu = (dim + 1) + bn * 1 + bn * order + ((order + dim) * dim + dim) + bn * dim
    token_mixer = bn * dim + lmu + (dim * dim + dim) + bn * dim
    hidden = ratio * dim
    channel_mixer = bn * dim + (dim * hidden + hidden) + bn * hidden + (hidden * dim + dim)
    head = bn * dim + dim * classes + classes
    return embed + token_mixer + channel_mixer + head


def test_speech_commands_model_has_the_papers_size() -> None:
    model = create_model("lmuformer_speech_commands")
    count = sum(p.numel() for p in model.parameters())
    assert count == _parameters_by_hand(128, 256, 35) == 1_689_894
    assert round(count / 1e4) == 169  # the paper's table: 1.69M
    lmu = model.blocks[0].token_mixer.lmu
    assert lmu.memory.order == 512 and lmu.W_u.out_features == 1
    assert model.blocks[0].token_mixer.neuron.threshold == 0.5


def test_synaptic_layers_after_the_first_see_spikes_only() -> None:
    torch.manual_seed(0)
    model = LMUFormer(in_features=6, num_classes=4, dim=8, depth=2, theta=8.0)
    inputs: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            inputs[name] = args[0]
        return hook

    hooks = [m.register_forward_hook(keep(n)) for n, m in model.named_modules()
             if isinstance(m, (nn.Linear, nn.Conv1d))]
    model(torch.randn(20, 3, 6))
    for h in hooks:
        h.remove()
    assert len(inputs) == 2 * 5 + 5 + 1  # per block W_u, W_h, W_o, fc1, fc2; 5 convs; head
    graded = {n for n, x in inputs.items() if not bool(((x == 0) | (x == 1)).all())}
    # the first convolution takes the input, and W_h the spikes of m beside the block's input
    # x (the LMU cell's [m; x]), which is the mixer neuron's spikes here
    assert graded == {"embed.conv0.conv"}


def test_the_patch_embedding_looks_ahead_five_frames_at_most() -> None:
    torch.manual_seed(0)
    model = LMUFormer(in_features=6, num_classes=4, dim=8, theta=8.0).double().eval()
    for norm in model.modules():  # narrow running statistics: the neurons fire
        if isinstance(norm, nn.BatchNorm1d):
            norm.running_var.fill_(0.01)
    x = torch.randn(40, 2, 6, dtype=torch.float64) * 3
    with torch.no_grad():
        base = model(x)
        snn.reset(model)
        y = x.clone()
        y[20] += 50.0
        moved = model(y)
    changed = (moved - base).abs().amax(dim=(1, 2)) > 0
    assert not changed[:15].any()  # 4 convolutions on the main path, 1 in the position path
    assert changed[15:20].any()  # the change arrives before its frame


def test_sequence_conv_is_centred_over_time() -> None:
    conv = SequenceConv1d(1, 1, 3)
    with torch.no_grad():
        conv.conv.weight.copy_(torch.tensor([[[1.0, 10.0, 100.0]]]))
    x = torch.zeros(5, 1, 1)
    x[2] = 1.0
    assert conv(x)[:, 0, 0].tolist() == [0.0, 100.0, 10.0, 1.0, 0.0]


def test_energy_report_counts_every_layer() -> None:
    torch.manual_seed(0)
    model = LMUFormer(in_features=6, num_classes=4, dim=8, theta=8.0)
    counts = count_ops(model, torch.randn(12, 2, 6))
    assert not [x.name for x in counts.layers if x.kind == "uncounted"]
    memory = counts.layer("blocks.0.token_mixer.lmu.memory")
    assert memory.calls == 1 and memory.acs > 0  # spikes u drive the memory
    assert counts.layer("blocks.0.channel_mixer.fc1").macs == 0  # spike input: accumulates
    report = EnergyReport(counts, "cmos45_fp32")
    assert sum(report.totals.values()) > 0 and report.to_text()


def test_bad_configuration_and_input_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        LMUFormer(dim=0)
    with pytest.raises(ValueError, match="order must be a positive integer"):
        LMUFormer(order=0)
    with pytest.raises(ValueError, match=r"LMUFormer: expected a sequence \[T, B, 128\]"):
        LMUFormer(dim=8)(torch.zeros(4, 2, 64))
