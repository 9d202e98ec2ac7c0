"""Threshold normalisation: the scale :math:`\\lambda` of each activation from calibration data.

A normaliser maps the positive activations of one layer (all of them, or one channel's) to the
threshold of its IF neurons. Rates saturate at one spike per step, so activations above
:math:`\\lambda` are clipped; a robust :math:`\\lambda` below the rare maximum trades that clipping
for finer resolution at the activations that matter (Rueckauer et al., 2017).

Add a method by registering a function in :data:`NORMALIZERS`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["NORMALIZERS", "percentile", "scale_of"]


def percentile(values: Tensor, q: float) -> Tensor:
    """The ``q``-th percentile of a 1-d tensor, with linear interpolation between order
    statistics (numpy's default), computed with ``kthvalue`` (no size limit, no full sort).

    Raises:
        ValueError: for an empty tensor or ``q`` outside ``[0, 100]``.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must lie in [0, 100], got {q}")
    values = values.reshape(-1)
    n = values.numel()
    if n == 0:
        raise ValueError("percentile of an empty set of values")
    pos = q / 100.0 * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    v_lo = torch.kthvalue(values, lo + 1).values
    if hi == lo or pos == lo:
        return v_lo
    v_hi = torch.kthvalue(values, hi + 1).values
    return v_lo + (v_hi - v_lo) * (pos - lo)


def _max(values: Tensor, _q: float) -> Tensor:
    return values.max()


def _percentile(values: Tensor, q: float) -> Tensor:
    return percentile(values, q)


NORMALIZERS: dict[str, Callable[[Tensor, float], Tensor]] = {
    "max": _max,
    "percentile": _percentile,
    "robust": _percentile,
}
"""``name -> fn(positive_values, percentile) -> scale``. ``"robust"`` is the percentile method
(99.9 by default), the name it has in the literature."""


def scale_of(values: Tensor, method: str, q: float) -> float | None:
    """Scale of one set of activations: ``NORMALIZERS[method]`` over its positive values.

    Zeros (inactive ReLUs) are left out, as in Rueckauer et al.; they would drag a percentile
    to zero in sparse layers. Returns ``None`` when no value is positive.

    Raises:
        ValueError: for an unknown method.
    """
    if method not in NORMALIZERS:
        raise ValueError(f"unknown normalisation method {method!r}; expected one of "
                         f"{sorted(NORMALIZERS)}")
    positive = values[values > 0]
    if positive.numel() == 0:
        return None
    return float(NORMALIZERS[method](positive.float(), q))
