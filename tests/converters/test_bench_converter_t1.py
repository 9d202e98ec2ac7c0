"""The T=1 fine-tuning benchmark's own pieces (``benchmarks/bench_converter_t1.py``): the mixed
augmentation and the refusal of contradictory options."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _bench() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        return __import__("bench_converter_t1")
    finally:
        sys.path.remove(str(BENCH))


def test_shift_mix_mixes_shifted_images() -> None:
    bench = _bench()
    same = torch.rand(1, 1, 8, 8).expand(16, 1, 8, 8).contiguous()
    # mixing copies of one image changes nothing: the result is the shifted batch
    mixed = bench.shift_mix(same, torch.Generator().manual_seed(1))
    shifted = bench.shift(same, torch.Generator().manual_seed(1))
    assert torch.allclose(mixed, shifted)
    # distinct images: each result lies between two shifted images, and most differ from
    # their own shifted image
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    mixed = bench.shift_mix(x, torch.Generator().manual_seed(3))
    shifted = bench.shift(x, torch.Generator().manual_seed(3))
    assert mixed.shape == x.shape
    assert mixed.min() >= 0 and mixed.max() <= 1
    changed = (mixed - shifted).abs().flatten(1).amax(1) > 1e-6
    assert int(changed.sum()) > 48


@pytest.mark.parametrize("argv", [
    ["--no-test", "--refit"],
    ["--mixup"],
    ["--mixup", "--distill-weight", "1", "--no-augment"],
])
def test_contradictory_options_are_refused(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture, argv: list[str]) -> None:
    bench = _bench()
    monkeypatch.setattr(sys, "argv", ["bench_converter_t1.py", *argv])
    with pytest.raises(SystemExit) as exc:
        bench.main()
    assert exc.value.code == 2
    assert ("--refit" if "--refit" in argv else "--mixup") in capsys.readouterr().err
