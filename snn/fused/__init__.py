"""Device-neutral plumbing of the fused whole-sequence kernels.

- :mod:`snn.fused.description`: one :class:`~snn.fused.description.NeuronDescription` per
  neuron (its step, state fields, parameters and defaults, and how the kernels run it); the
  backend table, the kernel test cases and the fused entry points are derived from it;
- :mod:`snn.fused.args`: the kernel arguments, read from their one declaration in
  ``snn/cuda_kernels/kernel_args.h`` (shared by the ``.cu`` source, the launchers and the
  host-emulated tests);
- :mod:`snn.fused.autograd`: the run of a description on an *engine* (the CPU loops of
  :mod:`snn.cpu_kernels` or the CUDA kernels of :mod:`snn.cuda_kernels`) as PyTorch custom
  operators with registered autograd and fake-tensor implementations.

Importing this package imports neither numba nor CuPy.
"""

__all__: list[str] = []
