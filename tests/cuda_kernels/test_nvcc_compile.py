"""Every CUDA source compiles with nvcc for sm_80 and sm_90 without a warning."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from snn.cuda_kernels import SOURCE_DIR
from snn.cuda_kernels.ops import COMPILE_OPTIONS, STORAGE_TYPES

ARCHS = ("80", "90")
KINDS = range(4)


def _nvcc() -> str:
    for candidate in (os.environ.get("NVCC"), "/usr/local/bin/nvcc", shutil.which("nvcc")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("nvcc not found (set NVCC or put it on PATH)")


def _instances() -> list[str]:
    """Forward and backward for every storage dtype x integration kind (reset, spike rule
    and surrogate are run-time values)."""
    ctypes_ = [STORAGE_TYPES[d] for d in (torch.float32, torch.float64, torch.float16,
                                          torch.bfloat16)]
    return [f"snn_{d}<{c}, {k}>"
            for d, c, k in itertools.product(("forward", "backward"), ctypes_, KINDS)]


@pytest.mark.slow
def test_kernels_compile_without_warnings(tmp_path):
    unit = tmp_path / "instances.cu"
    lines = ['#include "neuron_kernels.cu"', "void* snn_instances[] = {"]
    lines += [f"    (void*)&{name}," for name in _instances()]
    lines += ["};", ""]
    unit.write_text("\n".join(lines))
    cmd = [
        _nvcc(), "-c", "-o", str(tmp_path / "instances.o"), str(unit),
        *[o for o in COMPILE_OPTIONS if not o.startswith("-std")], "-std=c++17",
        "--Werror", "all-warnings", "-Xcompiler", "-Wall,-Wextra,-Werror",
        *itertools.chain.from_iterable(
            ("-gencode", f"arch=compute_{a},code=sm_{a}") for a in ARCHS),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"nvcc failed:\n{' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
    assert "warning" not in (proc.stdout + proc.stderr).lower()


def test_every_source_is_covered():
    """The compile test reaches every .cu file (each .cuh through it)."""
    sources = sorted(p.name for p in SOURCE_DIR.glob("*.cu"))
    assert sources == ["neuron_kernels.cu"]
    headers = sorted(p.name for p in SOURCE_DIR.glob("*.cuh"))
    text = (SOURCE_DIR / "neuron_kernels.cu").read_text()
    assert all(f'#include "{h}"' in text for h in headers)
    assert '#include "kernel_args.h"' in (SOURCE_DIR / "neuron.cuh").read_text()
