"""Broadcast schedules (``trigger.schedule``): parsing, per-customer due times, open windows,
and the engine's side of a customer's turn (arm, enter once, never twice)."""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from omnistream.domain.commands import Emit, ScheduleTimer
from omnistream.domain.events import EventError, check_producer_event, parse_event
from omnistream.domain.profile import Profile
from omnistream.domain.state import CustomerState
from omnistream.journey.broadcast import broadcast_due_event, broadcast_timer_id
from omnistream.journey.engine import step
from omnistream.journey.loader import JourneyLoadError
from omnistream.journey.model import Catalog
from omnistream.journey.schedule import (
    Schedule,
    closes_at,
    due_at,
    is_occurrence,
    open_occurrences,
    opens_at,
    parse_occurrence,
)
from tests.unit.journey.helpers import catalog_of, fire_next, sends

NEW_YORK = ZoneInfo("America/New_York")
KYIV = ZoneInfo("Europe/Kyiv")
TOKYO = ZoneInfo("Asia/Tokyo")
THU = date(2026, 12, 10)  # a Thursday

BROADCAST = """
id: thursday
name: Thursday broadcast
trigger:
  schedule: {weekly: thu, at: "18:00"}
  audience: regulars
steps:
  - id: offer
    type: send
    channels: [sms]
    content:
      sms:
        body: "Sushi tomorrow, {{ profile.traits.first_name }} ({{ trigger.properties.occurrence}})"
"""

SEGMENTS = """
segments:
  regulars:
    when: profile.traits.regular == true
"""


def broadcast_catalog(tmp: Path, journey: str = BROADCAST) -> Catalog:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "segments.yaml").write_text(textwrap.dedent(SEGMENTS))
    return catalog_of(tmp, journey)


def customer(zone: str, regular: bool = True, key: str = "c1") -> CustomerState:
    traits = {"first_name": "Ava", "timezone": zone, "regular": regular}
    return CustomerState(key=key, profile=Profile(traits=traits))


def entries(commands: list[object]) -> int:
    return sum(1 for c in commands if isinstance(c, Emit) and c.name == "journey_entered")


# --- the YAML ---------------------------------------------------------------------------------


def test_weekly_and_one_off_forms() -> None:
    weekly = Schedule.model_validate({"weekly": "thu", "at": "18:00"})
    assert weekly.weekly == ("thu",) and weekly.at == time(18, 0)
    assert weekly.late == timedelta(hours=6)
    several = Schedule.model_validate({"weekly": ["mon", "Thursday"], "at": "9:30"})
    assert several.weekly == ("mon", "thu")
    once = Schedule.model_validate({"on": "2026-12-24", "at": "10:00"})
    assert once.on == (date(2026, 12, 24),)
    assert is_occurrence(once, date(2026, 12, 24)) and not is_occurrence(once, THU)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"at": "18:00"}, "exactly one of 'weekly' or 'on'"),
        ({"weekly": "thu", "on": "2026-12-24", "at": "18:00"}, "exactly one of"),
        ({"weekly": "thu"}, "at"),
        ({"weekly": "someday", "at": "18:00"}, "weekday"),
        ({"weekly": "thu", "at": "25:00"}, "25:00"),
        ({"weekly": "thu", "at": "18:00", "late": "2d"}, "at most 20h"),
        ({"on": "2026-12-24", "at": "10:00", "starts": "2026-12-01"}, "go with 'weekly'"),
        ({"weekly": "thu", "at": "1:00", "starts": "2026-12-10", "ends": "2026-12-01"}, "before"),
    ],
)
def test_bad_schedules_are_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Schedule.model_validate(spec)


def test_a_bad_schedule_is_a_file_line_error(tmp_path: Path) -> None:
    bad = BROADCAST.replace('weekly: thu, at: "18:00"', 'weekly: thu, at: "18:00", late: 3d')
    with pytest.raises(JourneyLoadError) as err:
        broadcast_catalog(tmp_path, bad)
    assert "j0.yaml:5:" in str(err.value) and "at most 20h" in str(err.value)


def test_an_unknown_audience_is_a_file_line_error(tmp_path: Path) -> None:
    with pytest.raises(JourneyLoadError) as err:
        broadcast_catalog(tmp_path, BROADCAST.replace("audience: regulars", "audience: regular"))
    text = str(err.value)
    assert "j0.yaml:6:" in text and "unknown segment 'regular'" in text and "regulars" in text


def test_audience_goes_with_a_schedule(tmp_path: Path) -> None:
    bad = BROADCAST.replace('schedule: {weekly: thu, at: "18:00"}', "event: order_placed")
    with pytest.raises(JourneyLoadError, match="'audience' goes with a 'schedule' trigger"):
        broadcast_catalog(tmp_path, bad)


def test_the_catalog_lists_active_broadcasts(tmp_path: Path) -> None:
    catalog = broadcast_catalog(tmp_path)
    assert [j.id for j in catalog.scheduled] == ["thursday"]
    assert not catalog.immediate and not catalog.dated


# --- times ------------------------------------------------------------------------------------

SCHEDULE = Schedule.model_validate({"weekly": "thu", "at": "18:00"})


def test_due_at_local_time_in_three_zones() -> None:
    assert due_at(SCHEDULE, THU, TOKYO) == datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
    assert due_at(SCHEDULE, THU, KYIV) == datetime(2026, 12, 10, 16, 0, tzinfo=UTC)
    assert due_at(SCHEDULE, THU, NEW_YORK) == datetime(2026, 12, 10, 23, 0, tzinfo=UTC)


def test_dst_changes() -> None:
    # New York springs forward on Sunday 8 March 2026: 02:30 does not exist -> 03:30 EDT
    night = Schedule.model_validate({"on": "2026-03-08", "at": "02:30"})
    assert due_at(night, date(2026, 3, 8), NEW_YORK) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    # ... and falls back on 1 November: 01:30 happens twice -> the first one (EDT)
    twice = Schedule.model_validate({"on": "2026-11-01", "at": "01:30"})
    assert due_at(twice, date(2026, 11, 1), NEW_YORK) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    # Kyiv moves on 29 March: 18:00 is 16:00 UTC before, 15:00 UTC after
    sunday = Schedule.model_validate({"weekly": "sun", "at": "18:00"})
    assert due_at(sunday, date(2026, 3, 22), KYIV) == datetime(2026, 3, 22, 16, 0, tzinfo=UTC)
    assert due_at(sunday, date(2026, 3, 29), KYIV) == datetime(2026, 3, 29, 15, 0, tzinfo=UTC)


def test_an_occurrence_opens_in_the_first_zone_and_closes_after_the_last() -> None:
    assert opens_at(SCHEDULE, THU) == datetime(2026, 12, 10, 4, 0, tzinfo=UTC)
    assert closes_at(SCHEDULE, THU) == datetime(2026, 12, 11, 12, 0, tzinfo=UTC)
    lead = timedelta(hours=1)
    assert open_occurrences(SCHEDULE, datetime(2026, 12, 10, 2, 59, tzinfo=UTC), lead) == []
    assert open_occurrences(SCHEDULE, datetime(2026, 12, 10, 3, 0, tzinfo=UTC), lead) == [THU]
    assert open_occurrences(SCHEDULE, datetime(2026, 12, 11, 11, 59, tzinfo=UTC), lead) == [THU]
    assert open_occurrences(SCHEDULE, datetime(2026, 12, 11, 12, 0, tzinfo=UTC), lead) == []


def test_occurrence_ids_must_be_dates_of_the_schedule() -> None:
    assert parse_occurrence(SCHEDULE, "2026-12-10") == THU
    assert parse_occurrence(SCHEDULE, "2026-12-11") is None  # a Friday
    assert parse_occurrence(SCHEDULE, "2026-13-10") is None
    assert parse_occurrence(SCHEDULE, 20261210) is None


# --- the engine -------------------------------------------------------------------------------

SCAN = datetime(2026, 12, 10, 3, 30, tzinfo=UTC)


def test_a_turn_arms_the_local_time_and_the_firing_enters_once(tmp_path: Path) -> None:
    catalog = broadcast_catalog(tmp_path)
    state = customer("America/New_York")
    due = broadcast_due_event("c1", "thursday", THU, SCAN)
    state, commands = step(catalog, state, due, SCAN)
    (armed,) = [c for c in commands if isinstance(c, ScheduleTimer)]
    assert armed.due == datetime(2026, 12, 10, 23, 0, tzinfo=UTC)
    assert armed.timer_id == broadcast_timer_id("thursday", "2026-12-10")
    # the same input again (same id) and a twin with another id change nothing
    assert step(catalog, state, due, SCAN)[0] is state
    twin = due.model_copy(update={"event_id": "broadcast:other-id"})
    assert step(catalog, state, twin, SCAN)[1] == []
    state, commands = fire_next(catalog, state)
    (sms,) = sends(commands)
    assert sms.messages["sms"].body == "Sushi tomorrow, Ava (2026-12-10)"
    assert entries(commands) == 1
    # a late duplicate turn after the entry: no second timer, no second entry
    again = twin.model_copy(update={"event_id": "broadcast:third-id"})
    later = datetime(2026, 12, 11, 0, 0, tzinfo=UTC)
    assert step(catalog, state, again, later)[1] == []


def test_a_turn_after_the_local_time_enters_at_once_until_late(tmp_path: Path) -> None:
    catalog = broadcast_catalog(tmp_path)
    kyiv_due = datetime(2026, 12, 10, 16, 0, tzinfo=UTC)
    at_three_hours = kyiv_due + timedelta(hours=3)
    event = broadcast_due_event("c1", "thursday", THU, at_three_hours)
    _, commands = step(catalog, customer("Europe/Kyiv"), event, at_three_hours)
    assert entries(commands) == 1 and len(sends(commands)) == 1
    too_late = kyiv_due + timedelta(hours=6, seconds=1)
    event = broadcast_due_event("c1", "thursday", THU, too_late)
    assert step(catalog, customer("Europe/Kyiv"), event, too_late)[1] == []


def test_the_audience_is_judged_again_at_the_local_time(tmp_path: Path) -> None:
    catalog = broadcast_catalog(tmp_path)
    state, _ = step(
        catalog, customer("Asia/Tokyo"), broadcast_due_event("c1", "thursday", THU, SCAN), SCAN
    )
    left = state.model_copy(
        update={"profile": Profile(traits={"timezone": "Asia/Tokyo", "regular": False})}
    )
    _, commands = fire_next(catalog, left)
    assert entries(commands) == 0 and sends(commands) == []


def test_turns_for_other_days_or_journeys_are_ignored(tmp_path: Path) -> None:
    catalog = broadcast_catalog(tmp_path)
    friday = broadcast_due_event("c1", "thursday", THU + timedelta(days=1), SCAN)
    assert step(catalog, customer("Asia/Tokyo"), friday, SCAN)[1] == []
    other = broadcast_due_event("c1", "nope", THU, SCAN)
    assert step(catalog, customer("Asia/Tokyo"), other, SCAN)[1] == []


def test_next_weeks_occurrence_enters_again(tmp_path: Path) -> None:
    catalog = broadcast_catalog(tmp_path)
    state = customer("Europe/Kyiv")
    for week in range(2):
        day = THU + timedelta(days=7 * week)
        scan = SCAN + timedelta(days=7 * week)
        state, _ = step(catalog, state, broadcast_due_event("c1", "thursday", day, scan), scan)
        state, commands = fire_next(catalog, state)
        assert entries(commands) == 1, week
    assert state.history["thursday"].entries == 2


def test_producers_cannot_forge_a_turn() -> None:
    event = broadcast_due_event("c1", "thursday", THU, SCAN)
    forged = parse_event(event.model_copy(update={"source": "crm"}).to_json())
    with pytest.raises(EventError) as err:
        check_producer_event(forged, SCAN, timedelta(days=1))
    assert err.value.reason == "reserved" and "broadcast_due" in err.value.detail
