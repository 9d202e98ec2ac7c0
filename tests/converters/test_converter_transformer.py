"""Transformer conversion (expectation compensation, signed multi-threshold neurons): hand
counts of the modules and the SNN approaching the ANN as T grows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snn.converters import convert
from snn.converters.expectation import Expectation, SignedIFActivation


class Block(nn.Module):
    """Pre-norm attention block, a GELU MLP and a SiLU-gated MLP (product of two
    activations); the residual stream is signed."""

    def __init__(self, d: int = 8, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)
        self.gate = nn.Linear(d, d)
        self.up = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(self.ln1(x)).reshape(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        att = (q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5).softmax(-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, n, d))
        h = self.ln2(x)
        x = x + self.fc2(F.gelu(self.fc1(h)))
        return x + F.silu(self.gate(h)) * self.up(h)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.block = Block()
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.block(self.embed(x) - 0.5)).mean(1))


def test_expectation_outputs_sum_to_t_times_f_of_the_mean() -> None:
    torch.manual_seed(0)
    m = Expectation(F.gelu, [0], "F.gelu")
    x = torch.randn(5, 2, 3)
    first = m(x[:2].flatten(0, 1), steps=2).unflatten(0, (2, -1))
    rest = m(x[2:].flatten(0, 1), steps=3).unflatten(0, (3, -1))  # state carries over
    out = torch.cat([first, rest])
    for t in range(1, 6):
        expected = t * F.gelu(x[:t].mean(0))
        assert torch.allclose(out[:t].sum(0), expected, atol=1e-5)
    # a product: outputs sum to t * mean(A) @ mean(B)
    p = Expectation(torch.matmul, [0, 1], "torch.matmul")
    a, b = torch.randn(4, 2, 3, 5), torch.randn(4, 2, 5, 2)
    out = p(a.flatten(0, 1), b.flatten(0, 1), steps=4).unflatten(0, (4, -1))
    for t in range(1, 5):
        assert torch.allclose(out[:t].sum(0), t * a[:t].mean(0) @ b[:t].mean(0), atol=1e-5)
    assert torch.equal(p(a[0], b[0]), a[0] @ b[0])  # steps=None: the operation itself


def test_signed_neuron_hand_trace_and_resolution() -> None:
    n = SignedIFActivation(2.0, levels=1)
    x = torch.tensor([[0.6], [-0.6], [1.2], [-2.5]]).T  # one step, 4 neurons, theta=2
    seq = x.expand(4, -1, -1).reshape(4, 4)  # 4 steps of the same input
    out = n(seq, steps=4).reshape(4, 4)
    # x/theta = 0.3: v = 0.3, 0.6 -> fire (0.6 >= 0.5), -0.1, 0.2 ...
    assert out[:, 0].tolist() == [0.0, 2.0, 0.0, 0.0]
    assert out[:, 1].tolist() == [0.0, -2.0, 0.0, 0.0]
    # 0.6 -> fire (-0.4), 0.2, 0.8 -> fire (-0.2), 0.4
    assert out[:, 2].tolist() == [2.0, 0.0, 2.0, 0.0]
    assert out[:, 3].tolist() == [-2.0, -2.0, -2.0, -2.0]  # saturates at -theta
    # levels=2: amplitudes 1 and 1/2 (from 1/4 on); 0.3 -> 1/2, then -0.2 + 0.3 = 0.1: none
    n = SignedIFActivation(1.0, levels=2)
    assert n(torch.full((2, 1), 0.3), steps=2).reshape(-1).tolist() == [0.5, 0.0]
    # one step represents x within max(|x|/3, 2^-n) (the nearest amplitude); the mean over T
    # steps within 1/(2T)
    x = torch.linspace(-1, 1, 101)
    for levels in (1, 2, 4):
        n = SignedIFActivation(1.0, levels=levels)
        one = n(x, steps=1)
        n.reset_state()
        assert torch.all((one - x).abs() <= torch.clamp(x.abs() / 3, min=2.0 ** -levels) + 1e-6)
        for steps in (1, 3, 8):
            mean = n(x.repeat(steps), steps=steps).reshape(steps, -1).mean(0)
            n.reset_state()
            assert float((mean - x).abs().max()) <= 1 / (2 * steps) + 1e-6
    with pytest.raises(ValueError, match="threshold"):
        SignedIFActivation(0.0)
    with pytest.raises(ValueError, match="levels"):
        SignedIFActivation(1.0, levels=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("levels", [1, 4])
def test_snn_approaches_the_ann_as_t_grows(seed: int, levels: int) -> None:
    torch.manual_seed(seed)
    model = Tiny().eval()
    x = torch.rand(24, 5, 4)
    net, report = convert(model, x, method="max", signed_levels=levels, time_chunk=16)
    kinds = {type(m) for m in net.modules()}
    assert Expectation in kinds and SignedIFActivation in kinds
    assert any("expectation compensation" in layer.action for layer in report.layers)
    with torch.no_grad():
        ann, analog = model(x), net.analog(x)
        out = net.simulate(x, 128)
    # max normalisation: nothing is clipped on the calibration data
    assert torch.allclose(analog, ann, atol=1e-5)
    errors = [float((out[t - 1] - ann).abs().max()) for t in (2, 8, 32, 128)]
    assert errors[-1] < 0.1 * errors[0], errors
    assert errors[-1] <= errors[1] and errors[2] <= errors[0], errors
    assert errors[-1] < 0.05 * (1 + float(ann.abs().max())), errors


def test_time_chunks_do_not_change_the_result() -> None:
    torch.manual_seed(3)
    model = Tiny().double().eval()  # float64: no threshold crossing flips by rounding
    x = torch.rand(6, 5, 4, dtype=torch.float64)
    net, _ = convert(model, x, time_chunk=3)
    with torch.no_grad():
        a = net.simulate(x, 10)
        net.time_chunk = 10
        b = net.simulate(x, 10)
    assert torch.allclose(a, b, atol=1e-5)


class MHABlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln(x)
        a, _ = self.attn(h, h, h, need_weights=False)
        return self.head((x + a).mean(1))


def test_multihead_attention_is_written_out_and_converts() -> None:
    torch.manual_seed(4)
    model = MHABlock().eval()
    x = torch.randn(16, 5, 8)
    net, _ = convert(model, x, method="max", time_chunk=32)
    assert not any(isinstance(m, nn.MultiheadAttention) for m in net.modules())
    assert sum(isinstance(m, Expectation) for m in net.modules()) == 4  # LN, QK, softmax, AV
    with torch.no_grad():
        ann, out = model(x), net.simulate(x, 64)
        assert torch.allclose(net.analog(x), ann, atol=1e-5)
    errors = [float((out[t - 1] - ann).abs().max()) for t in (2, 64)]
    assert errors[1] < 0.2 * errors[0], errors


def test_a_running_converted_transformer_copies_and_detaches_its_state() -> None:
    import copy

    torch.manual_seed(5)
    model = MHABlock().eval()
    x = torch.randn(4, 5, 8)
    net, _ = convert(model, x, method="max", time_chunk=4)
    with torch.no_grad():
        net(x, steps=4)  # one chunk run: the expectation modules hold (sums, step, output)
    states = [m.state for m in net.modules() if isinstance(m, Expectation)]
    assert states and all(s is not None for s in states)
    copied = copy.deepcopy(net)  # used to fail on the step counter inside the state
    for m in net.modules():
        if isinstance(m, Expectation):
            m.detach_state()
    with torch.no_grad():  # both continue from the same state
        assert torch.allclose(copied(x, steps=4), net(x, steps=4))
