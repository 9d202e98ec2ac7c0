"""The CPU loops take each surrogate's derivative from its class (``Surrogate.kernel``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from snn.surrogate import SURROGATES

pytest.importorskip("numba", reason="the numba backend needs numba (pip install 'snn[cpu]')")

from snn.cpu_kernels import loops


def test_every_kernel_surrogate_is_compiled_in():
    assert {c.kernel_id for c in SURROGATES.values() if c.kernel_id >= 0} == loops.KERNEL_IDS


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_surrogate_grad_runs_each_class_kernel(dtype):
    z = np.linspace(-2.0, 2.0, 257).astype(dtype)
    out = np.empty_like(z)
    one, zero = dtype(1), dtype(0)
    for name in sorted(n for n, c in SURROGATES.items() if c.kernel_id >= 0):
        s = SURROGATES[name](alpha=1.3)
        k0, k1, k2 = (dtype(k) for k in s.kernel_constants())
        loops.surrogate_grad(type(s).kernel_id, z, out, k0, k1, k2, one, zero)
        ref = s.derivative(torch.from_numpy(z.copy())).numpy()
        tol = 1e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(out, ref, rtol=tol, atol=tol, err_msg=name)


def _gauss(z, k0, k1, k2, one, zero):
    return k0 * math.exp(k2 * z * z)


def _box(z, k0, k1, k2, one, zero):
    return k0 if abs(z) < k1 else zero


def test_a_new_kernel_is_picked_up_and_changes_the_cache_key():
    """A surrogate class with a new ``kernel`` needs no edit of the loops: the generated
    dispatch calls it, and the key that ``backward`` is cached under changes with it."""
    grad, key = loops._build_surrogate_grad([(3, _gauss)])
    z = np.linspace(-1, 1, 33)
    out = np.empty_like(z)
    grad(3, z, out, 2.0, 0.0, -0.5, 1.0, 0.0)
    np.testing.assert_allclose(out, 2.0 * np.exp(-0.5 * z * z), rtol=1e-14)
    assert loops._build_surrogate_grad([(3, _gauss)])[1] == key
    assert loops._build_surrogate_grad([(3, _box)])[1] != key
    assert loops._build_surrogate_grad([(4, _gauss)])[1] != key
