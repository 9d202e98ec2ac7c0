"""Fixtures for the dataset tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _find_recordings() -> Path | None:
    # ``shared/fixtures/events`` beside the checkout, or beside one of its parent folders.
    for parent in [ROOT, *ROOT.parents]:
        candidate = parent.parent / "shared" / "fixtures" / "events"
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture
def fixtures_dir() -> Path:
    """The folder of real event recordings (skips when absent)."""
    found = _find_recordings()
    if found is None:
        pytest.skip("real event recordings (shared/fixtures/events) not found near the checkout")
    return found
