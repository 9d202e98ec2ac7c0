"""Fused CUDA kernels launched through CuPy, and the device-independent fused plumbing.

- ``neuron.cuh``: the per-neuron update, surrogate derivatives and dtype conversions, written
  once for the GPU kernels and for a host-side C++ harness that checks the arithmetic on CPU;
- ``neuron_kernels.cu``: the forward and backward kernels (one launch per sequence each);
- :mod:`snn.cuda_kernels.fused`: the autograd Function shared with :mod:`snn.cpu_kernels`;
- :mod:`snn.cuda_kernels.ops`: the CuPy launcher and the ``"cupy"`` backend entry points.

Importing this package imports neither CuPy nor the kernels.
"""

from pathlib import Path

__all__ = ["SOURCE_DIR"]

SOURCE_DIR = Path(__file__).resolve().parent
"""Folder of the ``.cu``/``.cuh`` sources."""
