"""One customer's row in the customer table: profile, journeys, timers, recent event ids.

Everything about a customer lives in this one row, written once per event, so a crash or a
rebalance can never separate a journey from its pending waits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from omnistream.domain.profile import Profile

__all__ = [
    "RECENT_EVENTS",
    "RECENT_EVENT_IDS",
    "CustomerState",
    "EventSummary",
    "Instance",
    "JourneyRecord",
    "Timer",
]

RECENT_EVENT_IDS: Final = 256
"""How many recent event ids a row keeps to drop redelivered events (producer retries)."""

RECENT_EVENTS: Final = 10
"""How many recent events (type, source, time) a row keeps for the customer API."""


class EventSummary(BaseModel):
    """What the customer API shows of a recent event: no payload, so no personal data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    type: str
    source: str
    timestamp: datetime


class Timer(BaseModel):
    """A durable wait: fire ``timer_id`` for ``instance_id`` at ``due``.

    ``purpose`` says what the firing means: ``wait`` / ``timeout`` (go on from ``step_id``),
    ``engage`` (no engagement yet: next channel), ``quiet`` (quiet hours are over: send now),
    ``trigger`` (a time-based trigger of ``journey_id``; no instance yet, ``instance_id`` empty).
    """

    model_config = ConfigDict(extra="forbid")

    timer_id: str
    instance_id: str
    due: datetime
    purpose: str = "wait"
    journey_id: str = ""
    step_id: str = ""
    payload: dict[str, Any] = Field(default_factory=dict)
    """For ``trigger`` timers: the event that armed it and the repeats left."""


class Instance(BaseModel):
    """One customer's live run through one journey, pinned to the version it entered with."""

    model_config = ConfigDict(extra="forbid")

    instance_id: str
    journey_id: str
    version: str
    step_id: str
    entered_at: datetime
    control: bool = False
    trigger: dict[str, Any] = Field(default_factory=dict)
    """The triggering event (as JSON), available to templates and conditions as ``trigger``."""
    vars: dict[str, Any] = Field(default_factory=dict)
    timer_id: str | None = None
    """The one pending timer that will move this instance on (every parked instance has one)."""
    attempt: int = 0
    """Send attempt within the current send step (engagement fallback bumps it)."""
    position: int = 0
    """Chain position of the current send (outcome events move it when a channel falls back)."""
    chain: tuple[str, ...] = ()
    send_ids: tuple[str, ...] = ()
    """Send ids of the current step: engagement with any of them counts."""
    running_version: str = ""
    """The journey version the instance runs on after an edit; empty while it is ``version``."""
    goal_reached: bool = False
    item_key: str = ""
    """Per-item journeys (``entry.instance_key``): the item this instance is for (a course id);
    empty for ordinary journeys and rows written before the field existed."""


class JourneyRecord(BaseModel):
    """Per journey history for re-entry rules."""

    model_config = ConfigDict(extra="forbid")

    entries: int = 0
    last_entered_at: datetime | None = None
    last_exit_reason: str | None = None


class CustomerState(BaseModel):
    """The whole table row."""

    model_config = ConfigDict(extra="forbid")

    key: str
    profile: Profile = Field(default_factory=Profile)
    instances: dict[str, Instance] = Field(default_factory=dict)
    timers: dict[str, Timer] = Field(default_factory=dict)
    history: dict[str, JourneyRecord] = Field(default_factory=dict)
    recent_event_ids: list[str] = Field(default_factory=list)
    recent_events: list[EventSummary] = Field(default_factory=list)
    seq: int = 0
    """Counter for deterministic instance ids within this row."""

    def to_bytes(self) -> bytes:
        """The row as stored: JSON without the fields still at their defaults.

        pydantic-core writes the JSON directly (no intermediate dict, no second encoder), byte
        for byte what ``orjson.dumps(model_dump(mode="json", exclude_defaults=True))`` wrote
        (tests/unit/test_row_codec.py). Leaving defaults out keeps rows small and lets the timer
        index skip rows without timers unparsed. About half of the remaining cost is
        ``exclude_defaults`` itself: pydantic calls every ``default_factory`` (a whole
        ``Profile()``) to compare against.
        """
        return self.__pydantic_serializer__.to_json(self, exclude_defaults=True)

    @classmethod
    def from_bytes(cls, raw: bytes) -> CustomerState:
        """Parse and validate in one pass (faster than ``orjson.loads`` + ``model_validate``)."""
        return cls.model_validate_json(raw)
