"""Fixtures of the CUDA-kernel tests: the exact ``.cu`` entry points compiled for the host.

``host_launch.cpp`` includes ``snn/cuda_kernels/neuron_kernels.cu`` behind a thin shim of the
CUDA built-ins (``cuda_host_shim.h``) and launches the kernels over the real grid on the CPU.
:class:`HostEngine` drives it with the buffers and argument records of the CuPy launcher
(:mod:`snn.cuda_kernels.ops`), so only the CuPy call itself differs from a GPU run. The
library is compiled once per source version: it is cached under pytest's cache directory,
keyed by a hash of the sources, the flags and the compiler's version.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from snn.cuda_kernels import SOURCE_DIR
from snn.cuda_kernels import ops as cuda_ops
from snn.fused.autograd import ENGINES, BackwardResult, ForwardResult, FusedSpec, Saved

HERE = Path(__file__).resolve().parent
SOURCES = (HERE / "host_launch.cpp", HERE / "cuda_host_shim.h",
           *sorted(SOURCE_DIR.glob("*.cu")), *sorted(SOURCE_DIR.glob("*.cuh")),
           *sorted(SOURCE_DIR.glob("*.h")))
FLAGS = ("-O1", "-std=c++14", "-shared", "-fPIC", "-ffp-contract=off", "-Wall", "-Wextra",
         "-Werror")
DTYPE_CODES = {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3}


def _compiler() -> str:
    for name in ("g++", "c++", "clang++"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no C++ compiler (g++/c++/clang++) on PATH to build the host kernels")


def _key(compiler: str) -> str:
    h = hashlib.sha256()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    for part in (compiler, version, *FLAGS):
        h.update(part.encode())
    for path in SOURCES:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:20]


@pytest.fixture(scope="session")
def host_lib(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    """The kernels compiled for the host (warnings are errors, no FMA contraction)."""
    compiler = _compiler()
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    folder = (Path(cache.mkdir("snn-host-kernels")) if cache is not None
              else tmp_path_factory.mktemp("snn-host-kernels"))
    out = folder / f"libsnn_host_{_key(compiler)}.so"
    if not out.exists():
        tmp = out.with_suffix(".tmp.so")
        cmd = [compiler, *FLAGS, f"-I{SOURCE_DIR}", f"-I{HERE}", "-o", str(tmp),
               str(HERE / "host_launch.cpp")]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"host kernels failed to compile:\n{proc.stderr}"
        tmp.replace(out)
    lib = ctypes.CDLL(str(out))
    lib.snn_host_launch.restype = ctypes.c_int
    lib.snn_host_launch.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                    ctypes.c_size_t, ctypes.c_longlong, ctypes.c_int]
    lib.snn_host_layout.restype = ctypes.c_int
    lib.snn_host_float_to_half.restype = ctypes.c_ushort
    lib.snn_host_float_to_half.argtypes = [ctypes.c_float]
    lib.snn_host_half_to_float.restype = ctypes.c_float
    lib.snn_host_half_to_float.argtypes = [ctypes.c_ushort]
    lib.snn_host_float_to_bf16.restype = ctypes.c_ushort
    lib.snn_host_float_to_bf16.argtypes = [ctypes.c_float]
    return lib


class HostEngine:
    """The CuPy engine's buffers, argument records and grid, launched on the host-compiled
    kernels instead of through CuPy."""

    name = "cuda-on-host"
    dtypes = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
    devices = ("cpu",)
    recompute = False

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib

    def _launch(self, direction: int, dtype: torch.dtype, kind: int, n: int,
                record: np.void) -> None:
        if n == 0:
            return
        blocks, threads = cuda_ops.grid(n)
        buf = np.array(record)  # keeps the bytes alive for the call
        rc = self.lib.snn_host_launch(direction, DTYPE_CODES[dtype], kind,
                                      buf.ctypes.data, buf.nbytes, blocks, threads)
        assert rc == 0, f"host launch failed with code {rc}"

    def forward(self, spec: FusedSpec, x: Tensor, v0: Tensor, i0: Tensor, a0: Tensor,
                beta: Tensor, c: Tensor, thr: Tensor, record: bool) -> ForwardResult:
        outs = cuda_ops.forward_buffers(spec, x, record)
        args = cuda_ops.forward_args(spec, x, v0, i0, a0, beta, c, thr, outs, record)
        self._launch(0, x.dtype, spec.kind, x.shape[1], args)
        return cuda_ops.forward_result(spec, outs, record)

    def backward(self, spec: FusedSpec, saved: Saved, g_s: Tensor | None,
                 g_vrec: Tensor | None, g_vt: Tensor, g_it: Tensor, g_at: Tensor,
                 want_beta: bool, want_thr: bool) -> BackwardResult:
        ins, outs, modes = cuda_ops.backward_buffers(saved, g_s, g_vrec, g_vt, g_it, g_at)
        T, N = outs["gx"].shape
        args = cuda_ops.backward_args(spec, g_vt.dtype, ins, outs, T, N, modes, want_beta,
                                      want_thr)
        self._launch(1, g_vt.dtype, spec.kind, N, args)
        return cuda_ops.backward_result(outs, want_beta, want_thr)


@pytest.fixture(scope="session")
def host_engine(host_lib: ctypes.CDLL) -> str:
    """Name of the host engine in :data:`snn.fused.autograd.ENGINES` (registered here)."""
    ENGINES["cuda-on-host"] = HostEngine(host_lib)
    return "cuda-on-host"
