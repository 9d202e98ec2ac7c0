"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import user_surrogates  # noqa: F401  (registers surrogates without kernels, as a user would)

ROOT = Path(__file__).resolve().parents[1]


def find_recordings() -> Path | None:
    """``shared/fixtures/events`` beside the checkout, or beside one of its parent folders."""
    for parent in [ROOT, *ROOT.parents]:
        candidate = parent.parent / "shared" / "fixtures" / "events"
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture
def fixtures_dir() -> Path:
    """The folder of real event recordings (skips with the reason when absent)."""
    found = find_recordings()
    if found is None:
        pytest.skip("real event recordings (shared/fixtures/events) not found near the checkout")
    return found


@pytest.fixture(scope="session", autouse=True)
def _kernels_in_this_process() -> None:
    """The test process runs the numba kernels wherever ``backend="auto"`` would in a process
    that found a warm cache, whatever the state of the cache (a fresh checkout has none):
    the kernels then compile in the process at their first use. The cold-cache behaviour is
    tested on its own, with its own state, in ``tests/cpu_kernels/test_warmup.py``."""
    try:
        from snn.cpu_kernels.warmup import ensure_compiled
    except ImportError:  # no numba: nothing to load
        return
    ensure_compiled(True)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
