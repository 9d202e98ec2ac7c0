"""Fused CPU kernels (numba): each neuron's whole sequence in one pass over time forward and
one reverse pass backward, parallel over neurons.

Selected by ``backend="numba"``, and by ``backend="auto"`` for CPU tensors when numba is
installed (``pip install 'snn[cpu]'``). The entry points live in :mod:`snn.cpu_kernels.ops`;
importing this package does not import numba.
"""

__all__: list[str] = []
