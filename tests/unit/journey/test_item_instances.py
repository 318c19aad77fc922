"""Per-item instances (``entry.instance_key``) and computed durations (``days(EXPR)``), issue 19."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from omnistream.domain.commands import Emit
from omnistream.domain.state import CustomerState, Instance
from omnistream.journey.engine import step
from omnistream.journey.loader import JourneyLoadError
from omnistream.journey.model import Catalog, ComputedDuration, journey_json_schema
from tests.unit.journey.helpers import T0, catalog_of, ev, fire_next, scheduled, sends

COURSES = """
id: courses
name: Courses
trigger:
  event: order_placed
  when: event.properties.course_id
entry:
  instance_key: event.properties.course_id
  max_instances: 3
goal:
  event: order_placed
  when: event.properties.course_id
steps:
  - id: until_end
    type: wait
    duration: "days(event.properties.course_days - 3)"
    next: remind
  - id: remind
    type: send
    channels: [email]
    content:
      email: {subject: "Restock", body: "{{ trigger.properties.course_id }} ends soon"}
"""


@pytest.fixture
def courses(tmp_path: Path) -> Catalog:
    return catalog_of(tmp_path, COURSES)


def order(course: str | None, days: object = 30, at: timedelta = timedelta(0)) -> object:
    props = {} if course is None else {"course_id": course, "course_days": days}
    return ev("order_placed", T0 + at, **props)


def exits(commands: list[object]) -> list[str | None]:
    return [c.reason for c in commands if isinstance(c, Emit) and c.name == "journey_exited"]


def test_two_items_get_two_instances_and_two_timers(courses: Catalog) -> None:
    state, _ = step(courses, CustomerState(key="c1"), order("bp"), T0)
    state, _ = step(courses, state, order("statin", 60, timedelta(days=4)), T0 + timedelta(days=4))
    keys = sorted(i.item_key for i in state.instances.values())
    assert keys == ["bp", "statin"]
    dues = sorted(t.due for t in state.timers.values())
    assert dues == [T0 + timedelta(days=27), T0 + timedelta(days=61)]
    ids = sorted(i.instance_id for i in state.instances.values())
    assert ids == ["courses:1", "courses:3"]  # journey:seq, as ordinary instances (t2: a timer)


def test_same_item_twice_keeps_one_instance(courses: Catalog) -> None:
    state, _ = step(courses, CustomerState(key="c1"), order("bp"), T0)
    # a re-order of bp is the goal of bp's instance and ends it, then enters a fresh one
    state, commands = step(courses, state, order("bp", at=timedelta(days=1)), T0)
    assert exits(commands) == ["goal"]
    assert [i.item_key for i in state.instances.values()] == ["bp"]


def test_reorder_of_one_item_leaves_the_other(courses: Catalog) -> None:
    state, _ = step(courses, CustomerState(key="c1"), order("bp"), T0)
    state, _ = step(courses, state, order("statin", 60, timedelta(days=4)), T0)
    state, commands = step(courses, state, order("statin", 60, timedelta(days=10)), T0)
    assert exits(commands) == ["goal"]
    assert sorted(i.item_key for i in state.instances.values()) == ["bp", "statin"]
    state, commands = fire_next(courses, state)  # bp's day 27 still comes
    (send,) = sends(commands)
    assert "bp ends soon" in send.messages["email"].body


def test_bound_on_live_instances(courses: Catalog) -> None:
    state = CustomerState(key="c1")
    for course in ("a", "b", "c", "d"):
        state, _ = step(courses, state, order(course), T0)
    assert sorted(i.item_key for i in state.instances.values()) == ["a", "b", "c"]


def test_event_without_item_enters_nothing(tmp_path: Path) -> None:
    text = COURSES.replace("  when: event.properties.course_id\nentry", "entry")
    catalog = catalog_of(tmp_path, text)
    state, commands = step(catalog, CustomerState(key="c1"), order(None), T0)
    assert not state.instances and not commands


def test_computed_wait_bad_value_exits_with_reason(courses: Catalog) -> None:
    for bad in ("thirty", 2, 10_000):
        state, commands = step(courses, CustomerState(key="c1"), order("bp", bad), T0)
        assert exits(commands) == ["bad_duration"], bad
        (emit,) = [c for c in commands if isinstance(c, Emit) and c.name == "journey_exited"]
        assert "days(event.properties.course_days - 3)" in emit.attributes["detail"]
        assert not state.instances and not scheduled(commands)


def test_computed_after_trigger(tmp_path: Path) -> None:
    catalog = catalog_of(
        tmp_path,
        """
        id: later
        name: Later
        trigger: {event: order_placed, after: "hours(event.properties.hours)"}
        steps:
          - {id: done, type: exit}
        """,
    )
    state, commands = step(catalog, CustomerState(key="c1"), ev("order_placed", hours=5), T0)
    (timer,) = scheduled(commands)
    assert timer.due == T0 + timedelta(hours=5)
    _, commands = step(catalog, state, ev("order_placed", hours=-1), T0)
    assert not scheduled(commands)  # a bad computed delay arms nothing (the old one stays)


def test_old_rows_decode_without_item_key() -> None:
    raw = (
        b'{"key":"c1","instances":{"j:1":{"instance_id":"j:1","journey_id":"j",'
        b'"version":"v","step_id":"s","entered_at":"2026-03-02T10:00:00Z"}}}'
    )
    state = CustomerState.from_bytes(raw)
    assert state.instances["j:1"].item_key == ""
    assert b"item_key" not in state.to_bytes()
    assert Instance.model_fields["item_key"].default == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            COURSES.replace("  when: event.properties.course_id\nentry", "  after: 1d\nentry"),
            "instance_key needs an event trigger without 'after'",
        ),
        (COURSES.replace("course_days - 3)", "course_days - )"), "invalid condition syntax"),
        (COURSES.replace('"days(event', '"weeks(event'), "or a computed one like"),
        (COURSES.replace("instance_key: event.", "instance_key: evnt."), "unknown name 'evnt'"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(JourneyLoadError) as caught:
        catalog_of(tmp_path, text)
    (error,) = caught.value.errors
    assert message in error.message and error.file.endswith("j0.yaml") and error.line > 1


def test_computed_duration_round_trips_and_has_a_schema(courses: Catalog) -> None:
    journey = courses.journeys["courses"]
    wait = journey.steps[0]
    assert isinstance(getattr(wait, "duration", None), ComputedDuration)
    dumped = journey.model_dump(mode="json", by_alias=True)
    assert dumped["steps"][0]["duration"] == "days(event.properties.course_days - 3)"
    assert type(journey).model_validate(dumped) == journey
    assert "instance_key" in journey_json_schema()["$defs"]["Entry"]["properties"]
