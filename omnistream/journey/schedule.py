"""Scheduled and recurring broadcasts: which occurrence is open, and when it is due per customer.

A broadcast journey says *when* (``schedule: {weekly: thu, at: "18:00"}`` or
``{on: "2026-12-24", at: "10:00"}``) and *to whom* (``audience: friday_regulars``, a segment).
An occurrence is one date of the schedule; its id is that date (``2026-12-24``). For one
customer the occurrence is due at the first ``at`` local time on that date in the customer's
zone (a time that a spring-forward gap skips resolves forward, ``local_at``), so one occurrence
spans the whole day of time zones: it *opens* when the earliest zone (UTC+14) reaches ``at``
and *closes* ``late`` after the latest zone (UTC-12) reached it.

Pure: no clock, no Kafka. ``now`` is a parameter; the runtime (``runtime/broadcasts.py``) asks
which occurrences are open and the engine (``journey/broadcast.py``) when a customer is due.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from omnistream.journey.types import Duration
from omnistream.policies.quiet_hours import WEEKDAYS, TimeOfDay, Weekday, local_at

__all__ = [
    "EARLIEST_ZONE",
    "LATEST_ZONE",
    "MAX_LATE",
    "Schedule",
    "closes_at",
    "due_at",
    "is_occurrence",
    "occurrence_id",
    "open_occurrences",
    "opens_at",
    "parse_occurrence",
]

EARLIEST_ZONE: Final = timezone(timedelta(hours=14))
"""The first civil time zone to reach a local time (Line Islands, UTC+14)."""
LATEST_ZONE: Final = timezone(timedelta(hours=-12))
"""The last one (Baker Island, UTC-12)."""
MAX_LATE: Final = timedelta(hours=20)
"""Longest ``late``. Below a day (minus DST's hour) an entry for yesterday's occurrence is
always earlier than today's due time, which is how the engine tells occurrences apart."""


def _listed(value: Any) -> Any:
    """``thu`` or ``[thu, fri]``; ``"2026-12-24"`` or a list of dates."""
    return [value] if isinstance(value, str | date) else value


class Schedule(BaseModel):
    """When a broadcast runs: ``weekly`` on some days, or ``on`` some dates, ``at`` local time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weekly: Annotated[tuple[Weekday, ...], BeforeValidator(_listed)] | None = Field(
        default=None, description="Weekdays, e.g. 'thu' or [mon, thu]."
    )
    on: Annotated[tuple[date, ...], BeforeValidator(_listed)] | None = Field(
        default=None, description="One-off dates, e.g. '2026-12-24' or a list of them."
    )
    at: TimeOfDay = Field(description="Local time of day in the customer's zone, e.g. '18:00'.")
    starts: date | None = Field(default=None, description="First date a weekly schedule runs.")
    ends: date | None = Field(default=None, description="Last date a weekly schedule runs.")
    late: Duration = Field(
        default=timedelta(hours=6),
        description="How long after their local time a customer may still enter (a worker "
        "that was down catches up); later than that the customer is counted as missed.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if (self.weekly is None) == (self.on is None):
            raise ValueError("a schedule needs exactly one of 'weekly' or 'on'")
        if self.weekly is not None and not self.weekly:
            raise ValueError("'weekly' needs at least one weekday")
        if self.on is not None and not self.on:
            raise ValueError("'on' needs at least one date")
        if self.on is not None and (self.starts or self.ends):
            raise ValueError("'starts' and 'ends' go with 'weekly'")
        if self.starts and self.ends and self.ends < self.starts:
            raise ValueError("'ends' is before 'starts'")
        if not timedelta(0) < self.late <= MAX_LATE:
            raise ValueError("'late' must be more than 0 and at most 20h")
        return self


def is_occurrence(schedule: Schedule, day: date) -> bool:
    """Is ``day`` a date this schedule runs on?"""
    if schedule.on is not None:
        return day in schedule.on
    assert schedule.weekly is not None  # _one_kind
    if schedule.starts is not None and day < schedule.starts:
        return False
    if schedule.ends is not None and day > schedule.ends:
        return False
    return WEEKDAYS[day.weekday()] in schedule.weekly


def occurrence_id(day: date) -> str:
    """The id of the occurrence on ``day``: its ISO date."""
    return day.isoformat()


def parse_occurrence(schedule: Schedule, text: Any) -> date | None:
    """The date of occurrence id ``text`` if it is one of ``schedule``'s, else None."""
    if not isinstance(text, str) or len(text) != 10:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if is_occurrence(schedule, day) else None


def due_at(schedule: Schedule, day: date, tz: ZoneInfo) -> datetime:
    """When occurrence ``day`` is due for a customer in ``tz`` (UTC)."""
    return local_at(day, schedule.at, tz)


def opens_at(schedule: Schedule, day: date) -> datetime:
    """The first instant occurrence ``day`` is due anywhere (UTC+14 reaches ``at``)."""
    return datetime.combine(day, schedule.at, tzinfo=EARLIEST_ZONE).astimezone(UTC)


def closes_at(schedule: Schedule, day: date) -> datetime:
    """After this instant nobody may enter occurrence ``day`` any more."""
    return datetime.combine(day, schedule.at, tzinfo=LATEST_ZONE).astimezone(UTC) + schedule.late


def _candidates(now: datetime) -> Iterator[date]:
    today = now.astimezone(UTC).date()
    for offset in range(-2, 3):
        yield today + timedelta(days=offset)


def open_occurrences(schedule: Schedule, now: datetime, lead: timedelta) -> list[date]:
    """Occurrences to work on at ``now``: opened (less ``lead``, to prepare) and not closed.

    An occurrence is open for at most 26 h + ``late`` (< 2 days), so looking two days either
    side of today (UTC) finds every one.
    """
    return [
        day
        for day in _candidates(now)
        if is_occurrence(schedule, day)
        and opens_at(schedule, day) - lead <= now < closes_at(schedule, day)
    ]
