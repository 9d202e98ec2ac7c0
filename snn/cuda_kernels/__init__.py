"""Fused CUDA kernels launched through CuPy.

- ``kernel_args.h``: the kernels' arguments, declared once (read by :mod:`snn.fused.args`);
- ``neuron.cuh``: the per-neuron update, spike rules, surrogate derivatives and dtype
  conversions;
- ``neuron_kernels.cu``: the forward and backward kernels (one launch per sequence each),
  also compiled for the host by the test-suite and launched over the real grid on the CPU;
- :mod:`snn.cuda_kernels.ops`: the CuPy launcher, the engine of the ``"cupy"`` backend.

The device-neutral plumbing lives in :mod:`snn.fused`.

Importing this package imports neither CuPy nor the kernels.
"""

from pathlib import Path

__all__ = ["SOURCE_DIR"]

SOURCE_DIR = Path(__file__).resolve().parent
"""Folder of the ``.cu``/``.cuh`` sources."""
