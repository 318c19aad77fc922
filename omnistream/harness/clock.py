"""A clock the harness moves by hand, so a run reads no wall time and repeats exactly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["ManualClock"]


@dataclass
class ManualClock:
    """``now`` only moves forward, through ``advance_to``."""

    now: datetime

    def advance_to(self, when: datetime) -> None:
        """Move to ``when``; earlier times are ignored (time never runs backwards)."""
        if when > self.now:
            self.now = when
