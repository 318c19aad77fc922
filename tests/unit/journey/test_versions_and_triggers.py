from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from omnistream.domain.commands import Emit
from omnistream.domain.profile import Profile
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from tests.unit.journey.helpers import T0, catalog_of, ev, fire_next, hours, scheduled, sends

V1 = """
id: series
name: Series
trigger: {event: x}
steps:
  - {id: first, type: wait, duration: 1d, next: second}
  - {id: second, type: send, channels: [email], content: {email: {body: "v1"}}}
"""


def exits(commands: list[object]) -> list[str | None]:
    return [c.reason for c in commands if isinstance(c, Emit) and c.name == "journey_exited"]


def test_in_flight_instance_continues_at_the_same_step_on_the_new_version(tmp_path: Path) -> None:
    old = catalog_of(tmp_path, V1)
    state, _ = step(old, CustomerState(key="c1"), ev("x"), T0)
    new = catalog_of(tmp_path, V1.replace('"v1"', '"v2"'))
    assert new.journeys["series"].version != old.journeys["series"].version
    state, commands = fire_next(new, state)
    (send,) = sends(commands)
    assert send.messages["email"].body == "v2"
    assert send.journey_version == new.journeys["series"].version
    assert exits(commands) == ["completed"]


def test_removed_step_or_journey_exits_with_the_reason(tmp_path: Path) -> None:
    old = catalog_of(tmp_path / "a", V1)
    state, _ = step(old, CustomerState(key="c1"), ev("x"), T0)
    instance = next(iter(state.instances.values()))
    assert instance.version == old.journeys["series"].version
    renamed = V1.replace("id: first", "id: start")
    _, commands = fire_next(catalog_of(tmp_path / "b", renamed), state)
    assert exits(commands) == ["step_removed"] and not sends(commands)
    other = V1.replace("id: series", "id: other")
    _, commands = fire_next(catalog_of(tmp_path / "c", other), state)
    assert exits(commands) == ["journey_removed"]


AFTER = """
id: refill
name: Refill
trigger:
  event: order_placed
  when: "'meds' in pluck(event.properties.items, 'sku')"
  after: 27d
  repeat: 1
steps: [{id: remind, type: send, channels: [sms], category: transactional,
         content: {sms: {body: "Order {{ event.properties.order_id }} runs out soon"}}}]
"""


def test_after_trigger_is_rearmed_by_the_latest_event_and_repeats(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, AFTER)
    meds = [{"sku": "meds"}]
    state, commands = step(catalog, CustomerState(key="c1"), ev("order_placed", items=meds), T0)
    assert [s.due for s in scheduled(commands)] == [T0 + timedelta(days=27)]
    later = T0 + timedelta(days=10)
    state, commands = step(
        catalog, state, ev("order_placed", later, items=meds, order_id="o2"), later
    )
    assert len(commands) == 2  # cancel the old trigger, schedule the new one
    state, commands = fire_next(catalog, state)
    (send,) = sends(commands)
    assert send.messages["sms"].body == "Order o2 runs out soon"
    assert send.caused_at == later + timedelta(days=27)
    assert [s.due for s in scheduled(commands)] == [later + timedelta(days=54)]  # the repeat
    state, commands = fire_next(catalog, state)
    assert sends(commands) and not scheduled(commands) and not state.timers
    _, commands = step(catalog, state, ev("order_placed", items=[{"sku": "soap"}]), later)
    assert commands == []


BIRTHDAY = """
id: bday
name: Birthday
trigger: {date: {trait: birthday, at: "10:00"}}
steps: [{id: hi, type: send, channels: [email], content: {email: {body: "Happy birthday"}}}]
"""


def test_birthday_at_local_time_follows_the_profile(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, BIRTHDAY)
    profile = Profile(traits={"birthday": "1992-02-29", "timezone": "America/New_York"})
    state, commands = step(catalog, CustomerState(key="c1", profile=profile), ev("ping"), T0)
    # 2027 is not a leap year: 28 February, 10:00 in New York (EST, UTC-5)
    assert [s.due for s in scheduled(commands)] == [datetime(2027, 2, 28, 15, tzinfo=UTC)]
    moved = state.model_copy(
        update={"profile": Profile(traits={"birthday": "1990-03-10", "timezone": "Asia/Tokyo"})}
    )
    moved, commands = step(catalog, moved, ev("ping", T0 + hours(1)), T0 + hours(1))
    assert [s.due for s in scheduled(commands)] == [datetime(2026, 3, 10, 1, tzinfo=UTC)]
    moved, commands = fire_next(catalog, moved)
    assert sends(commands)[0].messages["email"].body == "Happy birthday"
    assert [s.due for s in scheduled(commands)] == [datetime(2027, 3, 10, 1, tzinfo=UTC)]
