"""Quiet hours and send windows, held to the customer's own local clock.

A marketing message that would land at 23:00 for the customer is not dropped: it waits until the
customer's window opens (Braze-grade quiet hours). Everything here is pure: the caller passes
``now`` (aware) and the customer's zone; results are aware datetimes in UTC.

Local times are resolved with ``zoneinfo``, so daylight-saving jumps are the zone's business: a
window start that falls into a spring-forward gap resolves to the first instant after the gap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

__all__ = [
    "WEEKDAYS",
    "QuietHours",
    "SendWindow",
    "TimeOfDay",
    "Weekday",
    "in_window",
    "is_quiet",
    "local_at",
    "next_allowed",
    "next_local_time",
    "next_window_open",
    "parse_time_of_day",
    "zone",
]

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HORIZON_DAYS: Final = 8
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_time_of_day(value: Any) -> time:
    """``"10:00"`` -> ``time(10, 0)``; times are always quoted-or-plain ``HH:MM`` strings."""
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        match = _TIME.match(value.strip())
        if match:
            return time(int(match.group(1)), int(match.group(2)))
    raise ValueError(f"expected a time of day like '10:00', got {value!r}")


def _weekday(value: Any) -> str:
    if isinstance(value, str) and value.lower()[:3] in WEEKDAYS:
        return value.lower()[:3]
    raise ValueError(f"expected a weekday ({', '.join(WEEKDAYS)}), got {value!r}")


TimeOfDay = Annotated[
    time,
    BeforeValidator(parse_time_of_day),
    # written as it is read ("10:00"), so a saved journey version loads again
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^([01]?\d|2[0-3]):[0-5]\d$"}),
]
Weekday = Annotated[str, BeforeValidator(_weekday), WithJsonSchema({"enum": list(WEEKDAYS)})]


class QuietHours(BaseModel):
    """No marketing sends from ``start`` to ``end`` local time (may cross midnight)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: TimeOfDay
    end: TimeOfDay


class SendWindow(BaseModel):
    """Marketing sends only on ``days`` between ``start`` and ``end`` local time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: tuple[Weekday, ...] = Field(default=WEEKDAYS, min_length=1)
    start: TimeOfDay = time(0, 0)
    end: TimeOfDay | None = Field(default=None, description="Exclusive; empty means midnight.")

    @model_validator(mode="after")
    def _ordered(self) -> SendWindow:
        if self.end is not None and self.end <= self.start:
            raise ValueError("send_window end must be later than start (same day)")
        return self


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone(name: str | None, default: str) -> ZoneInfo:
    """The customer's zone, or ``default`` when it is missing or not a real IANA name."""
    found = _zone(name) if name else None
    if found is not None:
        return found
    fallback = _zone(default)
    return fallback if fallback is not None else ZoneInfo("UTC")


def local_at(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of local ``day`` ``at`` in ``tz`` (gaps resolve forward)."""
    # fold=0 in a spring-forward gap uses the offset before the jump (PEP 495): a later instant.
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def is_quiet(moment: datetime, tz: ZoneInfo, quiet: QuietHours | None) -> bool:
    if quiet is None or quiet.start == quiet.end:
        return False
    t = moment.astimezone(tz).time()
    if quiet.start < quiet.end:
        return quiet.start <= t < quiet.end
    return t >= quiet.start or t < quiet.end


def in_window(moment: datetime, tz: ZoneInfo, window: SendWindow | None) -> bool:
    if window is None:
        return True
    local = moment.astimezone(tz)
    if WEEKDAYS[local.weekday()] not in window.days:
        return False
    t = local.time()
    return window.start <= t and (window.end is None or t < window.end)


def _candidates(now: datetime, tz: ZoneInfo, starts: Iterable[time]) -> list[datetime]:
    today = now.astimezone(tz).date()
    points = [now]
    for offset in range(_HORIZON_DAYS):
        day = today + timedelta(days=offset)
        points.extend(local_at(day, at, tz) for at in starts)
    return sorted(p for p in points if p >= now)


def next_allowed(
    now: datetime, tz: ZoneInfo, quiet: QuietHours | None, window: SendWindow | None
) -> datetime:
    """The first instant at or after ``now`` outside quiet hours and inside the send window.

    Returns ``now`` itself when a send is allowed right away. If the policies leave no allowed
    instant within a week (quiet hours covering the whole send window: a misconfiguration),
    ``now`` is returned so that nobody waits forever.
    """
    starts: list[time] = []
    if quiet is not None:
        starts.append(quiet.end)
    if window is not None:
        starts.append(window.start)
    for point in _candidates(now, tz, starts):
        if not is_quiet(point, tz, quiet) and in_window(point, tz, window):
            return point
    return now


def next_local_time(
    now: datetime, tz: ZoneInfo, at: time, days: tuple[str, ...] = WEEKDAYS
) -> datetime:
    """The next local ``at`` on one of ``days``, strictly after ``now``."""
    for point in _candidates(now, tz, [at]):
        if point > now and WEEKDAYS[point.astimezone(tz).weekday()] in days:
            return point
    return now + timedelta(days=1)  # unreachable with a non-empty ``days``


def next_window_open(now: datetime, tz: ZoneInfo, window: SendWindow) -> datetime:
    """``now`` if inside ``window``, else when it next opens."""
    for point in _candidates(now, tz, [window.start]):
        if in_window(point, tz, window):
            return point
    return now
