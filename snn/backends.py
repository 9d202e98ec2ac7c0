"""Backend dispatch: one table from ``(neuron, backend)`` to a whole-sequence implementation.

Every implementation has the signature of the reference functions in :mod:`snn.functional`::

    impl(x, state, *, record: bool, **params) -> SequenceOutput

with ``x`` time-first ``[T, B, ...]``. The ``"torch"`` rows point at those reference functions;
fused backends add rows for the neurons they cover. Rows name their implementation as
``"module:function"`` so nothing is imported until it is used.

An implementation that cannot handle a particular configuration (a surrogate it does not know,
say) raises :class:`UnsupportedConfiguration`; ``backend="auto"`` then moves on to the next
candidate, while an explicitly chosen backend lets the error through.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from snn.functional._common import SequenceOutput

__all__ = [
    "BACKENDS",
    "IMPLEMENTATIONS",
    "Backend",
    "BackendUnavailableError",
    "UnsupportedConfiguration",
    "available_backends",
    "check_backend_name",
    "resolve",
    "run_sequence_backend",
]


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend cannot run here; the message says how to install it."""


class UnsupportedConfiguration(ValueError):
    """A backend does not implement this neuron configuration (auto falls back)."""


def _always() -> bool:
    return True


def _module_available(name: str) -> Callable[[], bool]:
    @functools.cache
    def check() -> bool:
        return importlib.util.find_spec(name) is not None

    return check


@functools.cache
def _cupy_available() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    import torch

    return torch.cuda.is_available()


@dataclass(frozen=True)
class Backend:
    """A family of implementations.

    Attributes:
        name: the name users pass as ``backend=``.
        devices: device types (``"cpu"``, ``"cuda"``) it runs on.
        priority: higher is preferred by ``backend="auto"``.
        is_available: check that its dependencies are importable (read once per process).
        install_hint: what to install when it is missing.
    """

    name: str
    devices: tuple[str, ...]
    priority: int
    is_available: Callable[[], bool]
    install_hint: str


BACKENDS: dict[str, Backend] = {
    "torch": Backend("torch", ("cpu", "cuda", "mps", "xpu", "meta"), 0, _always, ""),
    "numba": Backend(
        "numba", ("cpu",), 10, _module_available("numba"), "pip install 'snn[cpu]' (numba)"
    ),
    "cupy": Backend(
        "cupy",
        ("cuda",),
        10,
        _cupy_available,
        "pip install 'snn[cuda12]' or 'snn[cuda13]' (CuPy for your CUDA version) and use a "
        "CUDA device",
    ),
}
"""Known backends by name."""

IMPLEMENTATIONS: dict[tuple[str, str], str] = {
    ("if", "torch"): "snn.functional.lif:if_sequence",
    ("lif", "torch"): "snn.functional.lif:lif_sequence",
    ("li", "torch"): "snn.functional.lif:li_sequence",
    ("cuba_lif", "torch"): "snn.functional.cuba:cuba_lif_sequence",
    ("alif", "torch"): "snn.functional.alif:alif_sequence",
    ("if", "numba"): "snn.cpu_kernels.ops:if_sequence",
    ("lif", "numba"): "snn.cpu_kernels.ops:lif_sequence",
    ("li", "numba"): "snn.cpu_kernels.ops:li_sequence",
    ("cuba_lif", "numba"): "snn.cpu_kernels.ops:cuba_lif_sequence",
    ("alif", "numba"): "snn.cpu_kernels.ops:alif_sequence",
    ("if", "cupy"): "snn.cuda_kernels.ops:if_sequence",
    ("lif", "cupy"): "snn.cuda_kernels.ops:lif_sequence",
    ("li", "cupy"): "snn.cuda_kernels.ops:li_sequence",
    ("cuba_lif", "cupy"): "snn.cuda_kernels.ops:cuba_lif_sequence",
    ("alif", "cupy"): "snn.cuda_kernels.ops:alif_sequence",
}
"""``(neuron, backend) -> "module:function"`` of the whole-sequence implementation."""


def check_backend_name(backend: str) -> None:
    """Raise ``ValueError`` unless ``backend`` is ``"auto"`` or a key of :data:`BACKENDS`."""
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}; expected 'auto' or one of {sorted(BACKENDS)}"
        )


def available_backends(neuron: str | None = None) -> list[str]:
    """Backends whose dependencies are importable (for ``neuron``'s rows, if given)."""
    names = sorted(BACKENDS, key=lambda n: -BACKENDS[n].priority)
    if neuron is not None:
        names = [n for n in names if (neuron, n) in IMPLEMENTATIONS]
    return [n for n in names if BACKENDS[n].is_available()]


@functools.cache
def _load(path: str) -> Callable[..., SequenceOutput]:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def resolve(neuron: str, backend: str, device_type: str) -> list[Callable[..., SequenceOutput]]:
    """Implementations to try, best first, for ``neuron`` on ``device_type``.

    Raises:
        ValueError: for an unknown backend or neuron, or a backend that does not run on the
            device.
        BackendUnavailableError: for an explicit backend whose dependencies are missing.
    """
    check_backend_name(backend)
    if (neuron, "torch") not in IMPLEMENTATIONS:
        known = sorted({n for n, _ in IMPLEMENTATIONS})
        raise ValueError(f"unknown neuron kind {neuron!r}; expected one of {known}")
    if backend != "auto":
        info = BACKENDS[backend]
        if (neuron, backend) not in IMPLEMENTATIONS:
            raise ValueError(f"backend {backend!r} has no implementation of neuron {neuron!r}")
        if device_type not in info.devices:
            raise ValueError(
                f"backend {backend!r} runs on {list(info.devices)} tensors, got a "
                f"{device_type!r} tensor"
            )
        if not info.is_available():
            raise BackendUnavailableError(
                f"backend {backend!r} is not available: {info.install_hint}"
            )
        return [_load(IMPLEMENTATIONS[(neuron, backend)])]
    candidates = [
        BACKENDS[b]
        for (n, b) in IMPLEMENTATIONS
        if n == neuron and device_type in BACKENDS[b].devices
    ]
    candidates.sort(key=lambda b: -b.priority)
    return [_load(IMPLEMENTATIONS[(neuron, b.name)]) for b in candidates if b.is_available()]


def run_sequence_backend(
    neuron: str,
    backend: str,
    x: Tensor,
    state: Any,
    record: bool,
    params: dict[str, Any],
) -> SequenceOutput:
    """Run ``neuron`` over the sequence ``x`` (``[T, B, ...]``) on the chosen backend."""
    impls = resolve(neuron, backend, x.device.type)
    for i, impl in enumerate(impls):
        try:
            return impl(x, state, record=record, **params)
        except UnsupportedConfiguration:
            if backend != "auto" or i == len(impls) - 1:
                raise
    raise AssertionError("unreachable: the torch backend is always a candidate")
