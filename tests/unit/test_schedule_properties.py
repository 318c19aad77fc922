"""Property tests of broadcast schedules against a reference, in zones on both sides of UTC and
across DST changes, and of the engine's "exactly once per occurrence" under repeated turns."""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnistream.domain.commands import Emit
from omnistream.domain.profile import Profile
from omnistream.domain.state import CustomerState
from omnistream.journey.broadcast import broadcast_due_event
from omnistream.journey.engine import step
from omnistream.journey.model import Catalog
from omnistream.journey.schedule import (
    Schedule,
    closes_at,
    due_at,
    is_occurrence,
    open_occurrences,
    opens_at,
)
from tests.unit.journey.helpers import catalog_of, fire_next

ZONES = (
    "America/New_York",  # west of UTC, US DST
    "America/Sao_Paulo",  # west, no DST since 2019
    "Europe/Kyiv",  # east, EU DST
    "Asia/Tokyo",  # east, no DST
    "Asia/Kolkata",  # half-hour offset
    "Pacific/Kiritimati",  # UTC+14, the first zone
    "UTC",
)
DAYS = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))
TIMES = st.times().map(lambda t: time(t.hour, t.minute))
WEEKLY = st.lists(
    st.sampled_from(("mon", "tue", "wed", "thu", "fri", "sat", "sun")), min_size=1, unique=True
)


def _exists(day: date, at: time, tz: ZoneInfo) -> bool:
    """Does local ``day`` ``at`` exist in ``tz`` (not skipped by a spring-forward gap)?"""
    local = datetime.combine(day, at, tzinfo=tz)
    return local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None)


@given(zone=st.sampled_from(ZONES), day=DAYS, at=TIMES)
def test_due_is_the_local_time_on_that_date(zone: str, day: date, at: time) -> None:
    tz = ZoneInfo(zone)
    schedule = Schedule(on=(day,), at=at)
    due = due_at(schedule, day, tz)
    wall = due.astimezone(tz).replace(tzinfo=None)
    shift = wall - datetime.combine(day, at)
    if _exists(day, at, tz):
        assert shift == timedelta(0)
    else:  # a gap: the same distance after the last time before it (resolves forward)
        assert timedelta(0) < shift <= timedelta(hours=1)
    assert opens_at(schedule, day) <= due <= closes_at(schedule, day) - schedule.late


NAIVE_RANGE = (datetime(2024, 1, 1), datetime(2030, 12, 31))  # noqa: DTZ001 (hypothesis wants naive bounds)


@given(
    days=WEEKLY,
    at=TIMES,
    now=st.datetimes(*NAIVE_RANGE, timezones=st.just(UTC)),
    lead_minutes=st.integers(0, 180),
)
def test_open_occurrences_match_a_brute_force_search(
    days: list[str], at: time, now: datetime, lead_minutes: int
) -> None:
    schedule = Schedule.model_validate({"weekly": days, "at": at.strftime("%H:%M")})
    lead = timedelta(minutes=lead_minutes)
    reference = [
        day
        for offset in range(-10, 11)
        if is_occurrence(schedule, day := now.date() + timedelta(days=offset))
        and opens_at(schedule, day) - lead <= now < closes_at(schedule, day)
    ]
    assert open_occurrences(schedule, now, lead) == reference


@given(zone=st.sampled_from(ZONES), day=DAYS, at=TIMES)
def test_every_zone_is_due_inside_the_open_window(zone: str, day: date, at: time) -> None:
    schedule = Schedule(on=(day,), at=at)
    due = due_at(schedule, day, ZoneInfo(zone))
    assert day in open_occurrences(schedule, due, timedelta(0))


# --- the engine: exactly one entry per occurrence -------------------------------------------

JOURNEY = """
id: weekly
name: Weekly
trigger: {schedule: {weekly: [thu, fri], at: "18:00"}}
steps:
  - id: hello
    type: send
    channels: [email]
    content: {email: {subject: "Hi", body: "Hello"}}
"""
CATALOG: dict[str, Catalog] = {}


def _catalog(tmp: Path) -> Catalog:
    if "c" not in CATALOG:
        CATALOG["c"] = catalog_of(tmp, textwrap.dedent(JOURNEY))
    return CATALOG["c"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(
    zone=st.sampled_from(ZONES),
    week=st.integers(0, 300),
    friday=st.booleans(),
    turns=st.lists(st.integers(-14 * 60, 26 * 60), min_size=1, max_size=5),
)
def test_repeated_turns_enter_once(
    tmp_path: Path, zone: str, week: int, friday: bool, turns: list[int]
) -> None:
    """Turns (rescans) at any minute of the open window, each with a fresh id, interleaved
    with the firings they armed: at most one entry, and exactly one if a turn came before the
    customer's local time plus ``late``."""
    catalog = _catalog(tmp_path)
    day = date(2024, 1, 4) + timedelta(days=7 * week + friday)  # a Thursday (or Friday)
    state = CustomerState(key="c1", profile=Profile(traits={"timezone": zone}))
    schedule = catalog.journeys["weekly"].trigger.schedule
    assert schedule is not None
    due = due_at(schedule, day, ZoneInfo(zone))
    entered = 0
    for n, minute in enumerate(sorted(turns)):
        now = opens_at(schedule, day) + timedelta(minutes=minute + 14 * 60)
        while state.timers and min(t.due for t in state.timers.values()) <= now:
            state, commands = fire_next(catalog, state)
            entered += sum(isinstance(c, Emit) and c.name == "journey_entered" for c in commands)
        event = broadcast_due_event("c1", "weekly", day, now)
        event = event.model_copy(update={"event_id": f"{event.event_id}-{n}"})
        state, commands = step(catalog, state, event, now)
        entered += sum(isinstance(c, Emit) and c.name == "journey_entered" for c in commands)
    while state.timers:
        state, commands = fire_next(catalog, state)
        entered += sum(isinstance(c, Emit) and c.name == "journey_entered" for c in commands)
    first = opens_at(schedule, day) + timedelta(minutes=min(turns) + 14 * 60)
    assert entered == (1 if first <= due + schedule.late else 0)
