"""The fused kernels' arguments, read from their one declaration.

``snn/cuda_kernels/kernel_args.h`` lists the fields of the forward and backward argument
structs as X-macros; the C++ side turns them into ``snn::ForwardArgs<S>`` /
``snn::BackwardArgs<S>``, and this module reads the same lists into NumPy structured dtypes
(C layout, ``align=True``). :func:`build` fills one record from named values; the CuPy
launcher passes it to the kernel by value, and the host-emulated tests pass its bytes to the
same entry points compiled for the CPU, which check its size and field offsets.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np
import torch

from snn.cuda_kernels import SOURCE_DIR

__all__ = ["ARGS_HEADER", "Field", "build", "fields", "record_dtype"]

ARGS_HEADER = SOURCE_DIR / "kernel_args.h"
"""The declaration of the kernel arguments."""

Field = tuple[str, str]
"""``(kind, name)`` of one field: kind is IN, OUT, PIN, POUT (pointers), I64, I32 or ACC."""

_POINTERS = ("IN", "OUT", "PIN", "POUT")


@functools.cache
def fields(direction: str) -> tuple[Field, ...]:
    """Fields of ``"forward"`` or ``"backward"`` in declaration order.

    Raises:
        ValueError: for another direction or a declaration this reader cannot parse.
    """
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction must be 'forward' or 'backward', got {direction!r}")
    text = ARGS_HEADER.read_text()
    macro = f"SNN_{direction.upper()}_ARGS"
    m = re.search(rf"#define {macro}\(X\)((?:[^\n]*\\\n)*[^\n]*)", text)
    if m is None:
        raise ValueError(f"{ARGS_HEADER}: no definition of {macro}(X)")
    out = tuple((k, n) for k, n in re.findall(r"X\((\w+),\s*(\w+)\)", m.group(1)))
    known = {*_POINTERS, "I64", "I32", "ACC"}
    bad = [k for k, _ in out if k not in known]
    if not out or bad:
        raise ValueError(f"{ARGS_HEADER}: {macro} has unknown field kinds {bad}")
    return out


def compute_dtype(dtype: torch.dtype) -> np.dtype:
    """NumPy type of the kernels' compute type ``A`` for storage dtype ``dtype``."""
    return np.dtype(np.float64 if dtype == torch.float64 else np.float32)


@functools.cache
def record_dtype(direction: str, acc: np.dtype) -> np.dtype:
    """The argument struct as a NumPy structured dtype (C layout) for compute type ``acc``."""
    kinds = {"I64": np.int64, "I32": np.int32, "ACC": acc, **dict.fromkeys(_POINTERS, np.uint64)}
    names = fields(direction)
    return np.dtype({"names": [n for _, n in names],
                     "formats": [kinds[k] for k, _ in names]}, align=True)


def build(direction: str, dtype: torch.dtype, values: dict[str, Any],
          address: Any = None) -> np.void:
    """One argument record: every declared field from ``values`` (tensors through
    ``address``, by default their ``data_ptr()``).

    Raises:
        KeyError: naming the fields missing from ``values`` or not declared.
    """
    rec_dtype = record_dtype(direction, compute_dtype(dtype))
    names = fields(direction)
    missing = sorted({n for _, n in names} - set(values))
    extra = sorted(set(values) - {n for _, n in names})
    if missing or extra:
        raise KeyError(f"{direction} kernel arguments: missing {missing}, undeclared {extra}")
    rec = np.zeros((), dtype=rec_dtype)
    for kind, name in names:
        value = values[name]
        if kind in _POINTERS:
            value = address(value) if address is not None else value.data_ptr()
        rec[name] = value
    return rec[()]
