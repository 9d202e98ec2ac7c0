"""The memory-lean path of the spiking transformers (snn/layers/lean.py): the same outputs,
gradients and batch-norm statistics as the plain modules, bit for bit, with fewer bytes kept
for the backward pass (counted from the autograd graph, not timed)."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F

import snn
from snn.layers import lean, lean_masks
from snn.layers.attention import SpikeQKV, _Projection, make_neuron
from snn.layers.stems import _conv_bn, _pool
from snn.models.spiking_transformers import SpikformerBlock, spikformer_cifar10


@pytest.fixture(autouse=True, scope="module")
def _kernels():
    """The lean path runs where the plain path runs the fused CPU kernels: make them ready."""
    pytest.importorskip("numba", reason="the lean path runs with the numba kernels")
    from snn.cpu_kernels import warmup

    warmup.ensure_compiled(block=True)


def _plain():
    """Saved-tensor hooks make the lean path step aside: the plain modules run."""
    return torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)


def _saved_bytes(out: torch.Tensor, params) -> int:
    """Bytes of the distinct storages the autograd graph behind ``out`` keeps for backward,
    parameters excluded."""
    skip = {p.untyped_storage().data_ptr() for p in params}
    seen: dict[int, int] = {}
    done: set = set()
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in done:
            continue
        done.add(node)
        kept = []
        for name in dir(node):
            if name.startswith("_saved_"):
                try:
                    value = getattr(node, name)
                except RuntimeError:
                    continue
                kept += list(value) if isinstance(value, (tuple, list)) else [value]
        with contextlib.suppress(RuntimeError, AttributeError):
            kept += list(node.saved_tensors)
        for t in kept:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                if storage.data_ptr() not in skip:
                    seen[storage.data_ptr()] = storage.nbytes()
        stack += [n for n, _ in node.next_functions]
    return sum(seen.values())


def _nodes(out: torch.Tensor) -> set[str]:
    names, done, stack = set(), set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in done:
            continue
        done.add(node)
        names.add(type(node).__name__)
        stack += [n for n, _ in node.next_functions]
    return names


def _step(proj, neuron, x, use_lean, calls=2):
    snn.reset(neuron)
    x = x.clone().requires_grad_()
    ctx = contextlib.nullcontext() if use_lean else _plain()
    with ctx:
        out = torch.cat([lean.project(proj, neuron, x) for _ in range(calls)])
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
    (out * weights).sum().backward()
    return [out, x.grad, *(p.grad for p in proj.parameters()), *proj.buffers(),
            neuron.state.v]


def _assert_same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v), (u - v).abs().max()


@pytest.mark.parametrize("kind", ["linear", "linear-no-bias", "conv", "conv-image"])
def test_projection_equals_the_plain_modules_bit_for_bit(kind):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if kind.startswith("linear"):
        proj = _Projection(24, 40, bias=kind == "linear")
        # a residual stream: sums of spike maps (values 0, 1, 2), kept in one byte
        x = (torch.rand(4, 3, 10, 24, generator=g) < 0.3).float() * 2
        x += (torch.rand(4, 3, 10, 24, generator=g) < 0.3).float()
    elif kind == "conv":
        proj = _conv_bn(6, 8)
        x = (torch.rand(4, 2, 6, 9, 9, generator=g) < 0.3).float()  # spikes, kept in 1 bit
    else:
        proj = _conv_bn(3, 8)
        x = torch.rand(4, 2, 3, 9, 9, generator=g)  # an image: kept as it is
    with torch.no_grad():
        proj[1].weight.uniform_(0.5, 2.0, generator=g)
        proj[1].bias.uniform_(-0.5, 0.5, generator=g)
    neuron = make_neuron()
    _step(copy.deepcopy(proj), neuron, x, False)  # first calls of the math libraries
    _step(copy.deepcopy(proj), neuron, x, True)
    lean_run = _step(copy.deepcopy(proj), neuron, x, True)
    plain_run = _step(copy.deepcopy(proj), neuron, x, False)
    _assert_same(lean_run, plain_run)
    assert lean_run[0].sum() > 0  # the neurons fired


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_projection_without_a_neuron_equals_the_plain_modules_bit_for_bit(kind):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(10)
    if kind == "linear":
        proj = _Projection(24, 16, bias=True)
        x = (torch.rand(4, 3, 10, 24, generator=g) < 0.3).float()
    else:
        proj = _conv_bn(6, 8)
        x = (torch.rand(4, 2, 6, 9, 9, generator=g) < 0.3).float()

    def run(module, use_lean):
        xg = x.clone().requires_grad_()
        with contextlib.nullcontext() if use_lean else _plain():
            out = lean.project_norm(module, xg)
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
        (out * weights).sum().backward()
        return [out, xg.grad, *(p.grad for p in module.parameters()), *module.buffers()], out

    lean_run, out = run(copy.deepcopy(proj), True)
    assert "_ProjectNeuronBackward" in _nodes(out)
    plain_run, out = run(copy.deepcopy(proj), False)
    assert "_ProjectNeuronBackward" not in _nodes(out)
    _assert_same(lean_run, plain_run)


def test_spike_attention_and_max_pool_equal_the_plain_computation():
    g = torch.Generator().manual_seed(2)
    qkv = [(torch.rand(2, 3, 2, 12, 4, generator=g) < 0.4).float().requires_grad_()
           for _ in range(3)]
    out = SpikeQKV(0.125)(*qkv)
    assert "_SpikeQKVBackward" in _nodes(out)
    grad = torch.randn(out.shape, generator=g)
    lean_grads = torch.autograd.grad(out, qkv, grad)
    q, k, v = qkv
    plain = q @ (k.transpose(-2, -1) @ v) * 0.125
    assert torch.equal(out, plain)
    _assert_same(lean_grads, torch.autograd.grad(plain, qkv, grad))

    def attention(use_lean):
        neuron = make_neuron(threshold=0.5)
        with contextlib.nullcontext() if use_lean else _plain():
            out = lean.spike_attention(SpikeQKV(0.125), neuron, *qkv)
        return [out, *torch.autograd.grad(out, qkv, torch.ones_like(out) * 0.3), neuron.state.v]

    attention(True)
    _assert_same(attention(True), attention(False))

    pool = _pool()
    x = (torch.rand(2, 3, 4, 8, 8, generator=g) < 0.3).float().requires_grad_()
    out = lean.spike_max_pool(pool, x)
    assert "_SpikeMaxPoolBackward" in _nodes(out)
    grad = torch.randn(out.shape, generator=g)
    with _plain():
        plain = pool(x)
    assert torch.equal(out, plain)
    _assert_same(torch.autograd.grad(out, x, grad), torch.autograd.grad(plain, x, grad))


def _train_step(model, x, y, use_lean):
    snn.reset(model)
    model.zero_grad(set_to_none=True)
    with contextlib.nullcontext() if use_lean else _plain():
        out = model(x)
    F.cross_entropy(out.mean(0), y).backward()
    return ([out.detach()] + [p.grad for p in model.parameters()]
            + [b.clone() for b in model.buffers()])


@pytest.mark.slow
def test_spikformer_training_step_is_bit_identical_to_the_plain_modules():
    torch.manual_seed(0)
    model = spikformer_cifar10(embed_dim=64, num_heads=2, depth=2)
    g = torch.Generator().manual_seed(4)
    x = torch.rand(4, 2, 3, 16, 16, generator=g)
    y = torch.tensor([3, 8])
    _train_step(copy.deepcopy(model), x, y, False)
    lean_model, plain_model = copy.deepcopy(model), copy.deepcopy(model)
    for _ in range(2):  # the second step starts from updated batch-norm statistics
        _assert_same(_train_step(lean_model, x, y, True), _train_step(plain_model, x, y, False))


def test_spikformer_block_keeps_a_sixth_of_the_bytes():
    """Per element of the block's ``[T, B, N, D]`` input, float32: the plain modules keep
    ~118 bytes (float copies of spikes, the batch norms' inputs and outputs, 4x wider ones in
    the MLP; a neuron starting from rest keeps no initial state); the lean path keeps ~21:
    five batch-norm inputs (4 bytes each) and packed spikes."""
    torch.manual_seed(0)
    block = SpikformerBlock(96, 3)
    x = (torch.rand(4, 2, 64, 96) < 0.3).float().requires_grad_()
    with _plain():
        plain = _saved_bytes(block(x), block.parameters()) / x.numel()
    snn.reset(block)
    lean_bytes = _saved_bytes(block(x), block.parameters()) / x.numel()
    assert plain > 110
    assert lean_bytes < 24 and lean_bytes < 0.2 * plain, (lean_bytes, plain)


def test_the_plain_modules_run_where_the_lean_path_would_not_be_exact_or_seen():
    torch.manual_seed(0)
    proj, neuron = _Projection(8, 8, bias=True), make_neuron()
    x = (torch.rand(2, 2, 5, 8) < 0.5).float().requires_grad_()
    assert "_ProjectNeuronBackward" in _nodes(lean.project(proj, neuron, x))
    snn.reset(neuron)
    handle = neuron.register_forward_hook(lambda *args: None)  # a monitor, a counter
    assert "_ProjectNeuronBackward" not in _nodes(lean.project(proj, neuron, x))
    handle.remove()
    snn.reset(neuron)
    with _plain():  # checkpointing, offloading
        assert "_ProjectNeuronBackward" not in _nodes(lean.project(proj, neuron, x))
    snn.reset(neuron)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the plain modules' mixed precision
        assert "_ProjectNeuronBackward" not in _nodes(lean.project(proj, neuron, x))
    snn.reset(neuron)
    proj.eval()
    assert "_ProjectNeuronBackward" not in _nodes(lean.project(proj, neuron, x))
    proj.train()
    learnable = make_neuron(neuron_kwargs={"learn_threshold": True})
    assert "_ProjectNeuronBackward" not in _nodes(lean.project(proj, learnable, x))
    assert not lean.lean_ready(proj, make_neuron(), x.transpose(1, 2))
    q = (torch.rand(2, 2, 2, 6, 4) < 0.5).float().requires_grad_()
    attn = lean.spike_attention(SpikeQKV(), make_neuron(), q, q, q)
    assert "_SpikeAttentionNeuronBackward" in _nodes(attn)
    with _plain():
        attn = lean.spike_attention(SpikeQKV(), make_neuron(), q, q, q)
    assert "_SpikeAttentionNeuronBackward" not in _nodes(attn)


def test_checkpointed_spikformer_still_equals_the_plain_one():
    """Under snn.memory_efficient (checkpointing with packed block inputs) the lean path
    steps aside inside the recomputation and the gradients stay those of the plain model."""
    torch.manual_seed(0)
    model = spikformer_cifar10(embed_dim=32, num_heads=2, depth=1)
    x = torch.rand(2, 2, 3, 16, 16)
    y = torch.tensor([1, 2])
    ref = _train_step(copy.deepcopy(model), x, y, False)
    ckpt = snn.memory_efficient(copy.deepcopy(model))
    _assert_same(_train_step(ckpt, x, y, True)[1:], ref[1:])


def test_compact_storage_is_exact():
    ones = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    kept = lean._Kept(ones)
    assert kept.kind == "bits" and kept.tensor.numel() == 1
    assert torch.equal(kept.restore(kept.tensor), ones)
    counts = torch.tensor([0.0, 2.0, 3.0, 255.0])
    kept = lean._Kept(counts)
    assert kept.kind == "u8" and torch.equal(kept.restore(kept.tensor), counts)
    for x in (torch.tensor([0.5, 1.0]), torch.tensor([-0.0, 1.0]), torch.tensor([256.0, 0.0])):
        kept = lean._Kept(x)
        assert kept.kind == "raw"
        restored = kept.restore(kept.tensor)
        assert torch.equal(restored.view(torch.int32), x.view(torch.int32))


def _attention_step(module, x, use_lean):
    snn.reset(module)
    module.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    with contextlib.nullcontext() if use_lean else _plain():
        out = module(x)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(5))
    (out * weights).sum().backward()
    return ([out, x.grad] + [p.grad for p in module.parameters()]
            + [b.clone() for b in module.buffers()])


@pytest.mark.parametrize("name", ["sdsa-mask", "sdsa-linear", "qk-token", "qk-channel"])
def test_sdsa_and_qk_attention_equal_the_plain_modules_bit_for_bit(name):
    from snn.layers.attention import QKAttention, SpikeDrivenSelfAttention

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(6)
    if name.startswith("sdsa"):
        module = SpikeDrivenSelfAttention(16, 2, variant=name.split("-")[1])
        x = torch.randn(4, 2, 20, 16, generator=g) * 2  # a membrane residual stream
        lean_nodes = {"_ProjectNeuronBackward"} | (
            {"_ProductSumBackward", "_MaskBackward"} if name == "sdsa-mask"
            else {"_SpikeAttentionNeuronBackward"})
    else:
        module = QKAttention(16, 2, kind=name.split("-")[1])
        x = (torch.rand(4, 2, 20, 16, generator=g) < 0.4).float()
        lean_nodes = {"_ProjectNeuronBackward", "_MaskBackward"}
    snn.reset(module)
    assert lean_nodes <= _nodes(module(x.clone().requires_grad_()))
    _attention_step(copy.deepcopy(module), x, False)
    lean_run = _attention_step(copy.deepcopy(module), x, True)
    plain_run = _attention_step(copy.deepcopy(module), x, False)
    _assert_same(lean_run, plain_run)
    assert lean_run[0].abs().sum() > 0


def test_spike_masks_and_column_sums_equal_the_plain_products():
    g = torch.Generator().manual_seed(7)
    k, v = [(torch.rand(2, 3, 2, 9, 4, generator=g) < 0.5).float().requires_grad_()
            for _ in range(2)]
    out = lean_masks.spike_product_sum(k, v, -2)
    grad = torch.randn(out.shape, generator=g)
    plain = (k * v).sum(-2, keepdim=True)
    assert torch.equal(out, plain)
    _assert_same(torch.autograd.grad(out, (k, v), grad), torch.autograd.grad(plain, (k, v), grad))
    for shape in [(2, 3, 2, 1, 4), (2, 3, 2, 9, 1)]:  # SDSA's column mask, QKTA's token mask
        mask = (torch.rand(shape, generator=g) < 0.5).float().requires_grad_()
        out = lean_masks.spike_mask(mask, v)
        grad = torch.randn(out.shape, generator=g)
        plain = mask * v
        assert torch.equal(out, plain)
        _assert_same(torch.autograd.grad(out, (mask, v), grad),
                     torch.autograd.grad(plain, (mask, v), grad))
    assert lean_masks.spike_mask(torch.ones(4), v) is None  # not of the operand's rank: plain
    with _plain():
        assert lean_masks.spike_product_sum(k, v, -2) is None


def test_sdsa_qk_attention_and_their_blocks_keep_less_than_half_the_bytes():
    """Per element of the ``[T, B, N, D]`` input (float32): SDSA ~52-58 bytes plain, ~21 lean
    (its input neuron, on a membrane, keeps its float input); the Spike-driven block ~112
    against ~30; Q-K attention ~36 against ~13; QKFormer's block ~97 against ~18."""
    from snn.layers.attention import QKAttention, SpikeDrivenSelfAttention
    from snn.models.spiking_transformers import QKFormerBlock, SpikeDrivenBlock

    torch.manual_seed(0)
    membrane = torch.randn(4, 2, 64, 96).requires_grad_()
    spikes = (torch.rand(4, 2, 64, 96) < 0.3).float().requires_grad_()
    cases = [(SpikeDrivenSelfAttention(96, 3, variant="mask"), membrane),
             (SpikeDrivenSelfAttention(96, 3, variant="linear"), membrane),
             (SpikeDrivenBlock(96, 3), membrane), (QKAttention(96, 3), spikes),
             (QKAttention(96, 3, kind="channel"), spikes),
             (QKFormerBlock(96, 3, 4.0, "token"), spikes)]
    for module, x in cases:
        with _plain():
            plain = _saved_bytes(module(x), module.parameters()) / x.numel()
        snn.reset(module)
        lean_bytes = _saved_bytes(module(x), module.parameters()) / x.numel()
        assert lean_bytes < 0.5 * plain, (type(module).__name__, lean_bytes, plain)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sdt", "qkformer"])
def test_sdt_and_qkformer_training_steps_are_bit_identical_to_the_plain_modules(name):
    from snn.models.spiking_transformers import QKFormer, SpikeDrivenTransformer

    torch.manual_seed(0)
    if name == "sdt":
        model = SpikeDrivenTransformer(num_classes=10, embed_dim=32, num_heads=2, depth=1,
                                       pools=(False, False, True, True))
        lean_nodes = {"_ProjectNeuronBackward", "_ProductSumBackward", "_MaskBackward"}
    else:
        model = QKFormer(num_classes=10, embed_dim=32, num_heads=(2, 2, 2), depths=(1, 1, 1))
        # (stage 3's SSA has 4 tokens of 16 features: (Q K^T) V, plain)
        lean_nodes = {"_ProjectNeuronBackward", "_MaskBackward", "_SpikeMaxPoolBackward"}
    g = torch.Generator().manual_seed(8)
    x = torch.rand(2, 2, 3, 32, 32, generator=g)
    y = torch.tensor([3, 8])
    snn.reset(model)
    assert lean_nodes <= _nodes(model(x))
    _train_step(copy.deepcopy(model), x, y, False)
    lean_model, plain_model = copy.deepcopy(model), copy.deepcopy(model)
    for _ in range(2):
        _assert_same(_train_step(lean_model, x, y, True), _train_step(plain_model, x, y, False))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_packing_kernels_agree_with_the_torch_route(dtype, monkeypatch):
    g = torch.Generator().manual_seed(9)
    cases = [(torch.rand(n, generator=g) < 0.5).to(dtype) for n in (1, 7, 8, 9, 1001)]
    cases += [torch.randint(0, 256, (13,), generator=g).to(dtype),
              torch.tensor([0.0, 1.0, -0.0], dtype=dtype), torch.tensor([1.0, 0.5], dtype=dtype),
              torch.tensor([1.0, 255.0, -0.0], dtype=dtype),
              torch.tensor([3.0, float("nan")], dtype=dtype)]
    with_kernels = [lean._compress(x) for x in cases]
    monkeypatch.setattr(lean, "_pack_kernels", lambda dtype: None)
    with_torch = [lean._compress(x) for x in cases]
    for x, (kind, stored), (kind_t, stored_t) in zip(cases, with_kernels, with_torch,
                                                     strict=True):
        assert kind == kind_t, x
        assert torch.equal(stored.view(torch.uint8), stored_t.view(torch.uint8))  # NaN too
        kept = lean._Kept(x, (kind, stored))
        restored = kept.restore(stored)
        assert restored.dtype == dtype and torch.equal(restored.view(torch.uint8),
                                                       x.view(torch.uint8))


def test_packing_kernels_follow_the_process_choice_of_kernels(monkeypatch):
    """Where this process runs the reference (its first call met a cold cache), the packing
    takes the torch route too, so nothing compiles in the calling process."""
    from snn.cpu_kernels import warmup

    monkeypatch.setattr(warmup, "ensure_compiled", lambda block, dtype=None: False)
    assert lean._pack_kernels(torch.float32) is None
    monkeypatch.setattr(warmup, "ensure_compiled", lambda block, dtype=None: True)
    assert lean._pack_kernels(torch.float32) is not None
