"""Shared fixtures: the real sample files, temporary work directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def realdata_dir() -> Path | None:
    """../shared/realdata (or $SMDOWN_REALDATA), or None when absent."""
    env = os.environ.get("SMDOWN_REALDATA")
    path = Path(env) if env else ROOT.parent / "shared" / "realdata"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real sample files; tests that need them skip with a clear message otherwise."""
    path = realdata_dir()
    if path is None:
        pytest.skip("real sample data not found at ../shared/realdata (set SMDOWN_REALDATA)")
    return path
