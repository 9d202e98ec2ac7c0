"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "events"


@pytest.fixture
def fixtures_dir() -> Path:
    """The folder of real event recordings beside the checkout (skips when absent)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"real event recordings not found at {FIXTURES}")
    return FIXTURES


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
