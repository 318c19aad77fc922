"""The one place that reads the wall clock. Everything else takes ``now`` as a parameter."""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["monotonic", "utcnow"]


def utcnow() -> datetime:
    """Current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


def monotonic() -> float:
    """Seconds from an arbitrary point, for durations."""
    return time.monotonic()
