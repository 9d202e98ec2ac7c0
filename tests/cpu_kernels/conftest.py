"""The CPU-kernel tests share the configuration cases of the CUDA-kernel tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cuda_kernels"))
