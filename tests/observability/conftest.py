"""Fixtures for the observability tests."""

from __future__ import annotations

import pytest

from .promtool import promtool_path


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of a working promtool (installed under .cache/promtool/ if needed)."""
    return promtool_path()
