"""Backend dispatch: one table from ``(neuron, backend)`` to a whole-sequence implementation.

Every implementation has the signature of the reference functions in :mod:`snn.functional`::

    impl(x, state, *, record: bool, **params) -> SequenceOutput

with ``x`` time-first ``[T, B, ...]``. The table (:func:`implementations`) is derived from
the neuron descriptions (:mod:`snn.fused.description`): the ``"torch"`` row of a neuron is its
reference sequence function, and every fused backend has a row for every neuron with fused
kernels, run by the backend's engine (:mod:`snn.fused.autograd`). Nothing is imported until
it is used.

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

import torch
from torch import Tensor

from snn.functional._common import SequenceOutput

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailableError",
    "UnsupportedConfiguration",
    "available_backends",
    "check_backend_name",
    "implementations",
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
        engine: name of its fused engine in :data:`snn.fused.autograd.ENGINES` (``""``
            for the reference backend).
    """

    name: str
    devices: tuple[str, ...]
    priority: int
    is_available: Callable[[], bool]
    install_hint: str
    engine: str = ""


BACKENDS: dict[str, Backend] = {
    "torch": Backend("torch", ("cpu", "cuda", "mps", "xpu", "meta"), 0, _always, ""),
    "numba": Backend(
        "numba", ("cpu",), 10, _module_available("numba"), "pip install 'snn[cpu]' (numba)",
        "numba",
    ),
    "cupy": Backend(
        "cupy",
        ("cuda",),
        10,
        _cupy_available,
        "pip install 'snn[cuda12]' or 'snn[cuda13]' (CuPy for your CUDA version) and use a "
        "CUDA device",
        "cupy",
    ),
}
"""Known backends by name."""

def implementations() -> dict[tuple[str, str], str]:
    """``(neuron, backend) -> implementation`` for every registered neuron description
    (:data:`snn.fused.description.DESCRIPTIONS`): the ``"torch"`` row names the reference
    ``"module:function"``; a fused backend's row names its engine (``"engine:NAME"``) and
    exists for every neuron with fused kernels. Derived on each call, so a neuron described
    later is covered."""
    from snn.fused.description import DESCRIPTIONS, get_description

    get_description("lif")  # imports snn.functional, which registers the built-in neurons
    table: dict[tuple[str, str], str] = {}
    for name, desc in DESCRIPTIONS.items():
        table[(name, "torch")] = desc.reference
        if desc.fused:
            for backend in BACKENDS.values():
                if backend.engine:
                    table[(name, backend.name)] = f"engine:{backend.engine}"
    return table


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
        table = implementations()
        names = [n for n in names if (neuron, n) in table]
    return [n for n in names if BACKENDS[n].is_available()]


def _load(neuron: str, path: str) -> Callable[..., SequenceOutput]:
    key = (neuron, path)
    impl = _LOADED.get(key)
    if impl is None:
        impl = _LOADED[key] = _make_impl(neuron, path)
    return impl


def _make_impl(neuron: str, path: str) -> Callable[..., SequenceOutput]:
    module, _, attr = path.partition(":")
    if module != "engine":
        return getattr(importlib.import_module(module), attr)
    from snn.fused.autograd import fused_sequence, get_engine
    from snn.fused.description import get_description

    desc = get_description(neuron)

    def impl(x: Tensor, state: Any = None, *, record: bool = False,
             **params: Any) -> SequenceOutput:
        return fused_sequence(attr, desc, x, state, record, params)

    def prepare(block: bool, dtype: torch.dtype | None = None) -> bool:
        engine = get_engine(attr)
        ready = getattr(engine, "prepare", None)
        return True if ready is None else ready(block, dtype)

    impl.__name__ = impl.__qualname__ = f"{neuron}_sequence_{attr}"
    impl.prepare = prepare  # type: ignore[attr-defined]
    return impl


_LOADED: dict[tuple[str, str], Callable[..., SequenceOutput]] = {}
"""Loaded implementations (a cache: filled on first use of each row)."""


def resolve(neuron: str, backend: str, device_type: str) -> list[Callable[..., SequenceOutput]]:
    """Implementations to try, best first, for ``neuron`` on ``device_type``.

    Raises:
        ValueError: for an unknown backend or neuron, or a backend that does not run on the
            device.
        BackendUnavailableError: for an explicit backend whose dependencies are missing.
    """
    key = (neuron, backend, device_type)
    impls = _RESOLVED.get(key)
    if impls is None:
        impls = _RESOLVED[key] = _resolve(neuron, backend, device_type)
    return impls


_RESOLVED: dict[tuple[str, str, str], list[Callable[..., SequenceOutput]]] = {}
"""Resolutions already made (a cache: availability is read once per process)."""


def _resolve(neuron: str, backend: str, device_type: str) -> list[Callable[..., SequenceOutput]]:
    check_backend_name(backend)
    table = implementations()
    if (neuron, "torch") not in table:
        known = sorted({n for n, _ in table})
        raise ValueError(f"unknown neuron kind {neuron!r}; expected one of {known}")
    if backend != "auto":
        info = BACKENDS[backend]
        if (neuron, backend) not in table:
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
        return [_load(neuron, table[(neuron, backend)])]
    candidates = [
        BACKENDS[b]
        for (n, b) in table
        if n == neuron and device_type in BACKENDS[b].devices
    ]
    candidates.sort(key=lambda b: -b.priority)
    return [_load(neuron, table[(neuron, b.name)]) for b in candidates if b.is_available()]


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
        prepare = getattr(impl, "prepare", None)
        # a fused engine whose kernels this process does not run ("auto" found a cold cache
        # at its first call and they compile elsewhere): "auto" moves on; an explicit
        # backend waits for them
        if (prepare is not None and not torch.compiler.is_compiling()
                and not prepare(backend != "auto", x.dtype) and i < len(impls) - 1):
            continue
        try:
            return impl(x, state, record=record, **params)
        except UnsupportedConfiguration:
            if backend != "auto" or i == len(impls) - 1:
                raise
    raise AssertionError("unreachable: the torch backend is always a candidate")
