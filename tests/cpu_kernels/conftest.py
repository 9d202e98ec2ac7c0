"""The CPU-kernel tests share the configuration cases of the CUDA-kernel tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cuda_kernels"))


import pytest


@pytest.fixture(autouse=True, scope="session")
def _kernels_compile_in_this_process():
    """backend="auto" would run the reference while a cold cache compiles elsewhere; the
    tests here compare the kernels themselves, so they wait for (or compile) them."""
    pytest.importorskip("numba", reason="the numba backend needs numba")
    from snn.cpu_kernels import warmup

    warmup.ensure_compiled(block=True)
