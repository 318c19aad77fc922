from __future__ import annotations

from pathlib import Path

import pytest

from omnistream.domain.commands import Emit
from omnistream.domain.profile import Profile
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.journey.model import Catalog
from tests.unit.journey.helpers import (
    T0,
    cancelled,
    catalog_of,
    ev,
    fire_next,
    hours,
    outcome,
    scheduled,
    sends,
    timer_event,
)

CART = """
id: cart
name: Cart
trigger: {event: cart_updated}
entry: {reentry: never}
goal: {event: order_placed}
steps:
  - id: wait
    type: wait_for
    event: order_placed
    timeout: 1h
    on_timeout: remind
  - id: remind
    type: send
    channels: [mobile_push, email]
    content:
      mobile_push: {body: "Hi {{ profile.traits.first_name | default: 'you' }}"}
      email: {subject: "Cart", body: "{{ event.properties.sku }} waits"}
"""


@pytest.fixture
def cart(tmp_path: Path) -> Catalog:
    return catalog_of(tmp_path, CART)


def emits(commands: list[object], name: str) -> list[Emit]:
    return [c for c in commands if isinstance(c, Emit) and c.name == name]


def test_entry_waits_and_sends_after_timeout(cart: Catalog) -> None:
    state = CustomerState(key="c1")
    state, commands = step(cart, state, ev("cart_updated", sku="shoe"), T0)
    assert len(emits(commands, "journey_entered")) == 1
    (timer,) = scheduled(commands)
    assert timer.due == T0 + hours(1) and timer.timer_id in state.timers
    instance = next(iter(state.instances.values()))
    assert instance.step_id == "wait" and instance.timer_id == timer.timer_id
    state, commands = fire_next(cart, state)
    (send,) = sends(commands)
    assert send.chain == ("mobile_push", "email") and send.position == 0
    assert send.messages["email"].body == "shoe waits"
    assert send.messages["mobile_push"].body == "Hi you"
    assert send.caused_by == f"timer:{timer.timer_id}" and send.caused_at == timer.due
    assert emits(commands, "journey_exited")[0].reason == "completed"
    assert not state.instances and not state.timers


def test_awaited_event_cancels_the_timeout(cart: Catalog) -> None:
    state, _ = step(cart, CustomerState(key="c1"), ev("cart_updated"), T0)
    state, commands = step(cart, state, ev("order_placed", T0 + hours(0.5)), T0 + hours(0.5))
    assert len(cancelled(commands)) == 1 and not state.timers
    assert [e.reason for e in emits(commands, "journey_exited")] == ["goal"]
    assert len(emits(commands, "journey_goal")) == 1 and not sends(commands)


def test_step_never_mutates_its_input(cart: Catalog) -> None:
    state, _ = step(cart, CustomerState(key="c1"), ev("cart_updated"), T0)
    before = state.model_dump()
    step(cart, state, timer_event(state, next(iter(state.timers))), T0 + hours(1))
    step(cart, state, ev("order_placed", T0), T0)
    assert state.model_dump() == before


def test_repeated_and_stale_inputs_change_nothing(cart: Catalog) -> None:
    event = ev("cart_updated")
    once, commands = step(cart, CustomerState(key="c1"), event, T0)
    again, repeated = step(cart, once, event, T0)
    assert again is once and repeated == [] and commands
    fired = timer_event(once, next(iter(once.timers)))
    after, _ = step(cart, once, fired, T0 + hours(1))
    stale = fired.model_copy(update={"event_id": "timer:other-delivery"})
    final, commands = step(cart, after, stale, T0 + hours(1))
    assert commands == [] and final.instances == after.instances and final.timers == after.timers


def test_reentry_never(cart: Catalog) -> None:
    state, _ = step(cart, CustomerState(key="c1"), ev("cart_updated"), T0)
    state, _ = step(cart, state, ev("order_placed"), T0)
    state, commands = step(cart, state, ev("cart_updated"), T0 + hours(2))
    assert commands == [] and not state.instances and state.history["cart"].entries == 1


def test_cooldown_and_max_instances(tmp_path: Path) -> None:
    text = """
    id: ping
    name: Ping
    trigger: {event: ping}
    entry: {reentry: cooldown, cooldown: 1d, max_instances: 2}
    steps: [{id: w, type: wait, duration: 3d}]
    """
    catalog = catalog_of(tmp_path, text)
    state = CustomerState(key="c1")
    entered = []
    for at in (T0, T0 + hours(1), T0 + hours(25), T0 + hours(50)):
        state, commands = step(catalog, state, ev("ping", at), at)
        entered.append(bool(emits(commands, "journey_entered")))
    # within the cooldown: no; after it: yes; the third live instance: no (max 2)
    assert entered == [True, False, True, False]


def test_audience_and_trigger_condition(tmp_path: Path) -> None:
    text = """
    id: vip
    name: VIP
    trigger: {event: order_placed, when: "event.properties.total >= 100"}
    entry: {audience: "'vip' in profile.traits.tags"}
    steps: [{id: hi, type: send, channels: [email], content: {email: {body: hi}}}]
    """
    catalog = catalog_of(tmp_path, text)
    vip = CustomerState(key="c1", profile=Profile(traits={"tags": ["vip"]}))
    plain = CustomerState(key="c2")
    assert sends(step(catalog, vip, ev("order_placed", total=150), T0)[1])
    assert not step(catalog, vip, ev("order_placed", total=50), T0)[1]
    assert not step(catalog, plain, ev("order_placed", key="c2", total=150), T0)[1]


def test_control_group_is_counted_but_gets_no_sends(tmp_path: Path) -> None:
    text = """
    id: holdout
    name: Holdout
    trigger: {event: x}
    entry: {control_percent: 100}
    steps: [{id: hi, type: send, channels: [email], content: {email: {body: hi}}}]
    """
    _, commands = step(catalog_of(tmp_path, text), CustomerState(key="c1"), ev("x"), T0)
    (entered,) = emits(commands, "journey_entered")
    assert entered.control and not sends(commands)
    assert emits(commands, "journey_exited")[0].reason == "completed"


def test_branch_split_update_profile_exit(tmp_path: Path) -> None:
    text = """
    id: flow
    name: Flow
    trigger: {event: x}
    steps:
      - id: route
        type: branch
        branches: [{when: "event.properties.n > 5", next: ab}]
        else: bye
      - id: ab
        type: split
        paths: [{name: a, weight: 1, next: tag}, {name: b, weight: 1, next: tag}]
      - id: tag
        type: update_profile
        set: {segment: big}
        increment: {visits: 2}
        add_tags: [flowed]
        next: bye
      - {id: bye, type: exit, reason: done_here}
    """
    catalog = catalog_of(tmp_path, text)
    state = CustomerState(key="c1", profile=Profile(traits={"visits": 1}))
    big, commands = step(catalog, state, ev("x", n=9), T0)
    assert big.profile.traits == {"visits": 3, "segment": "big", "tags": ["flowed"]}
    assert state.profile.traits == {"visits": 1}
    variants = {e.attributes.get("variant") for e in emits(commands, "journey_step")} - {None}
    assert variants <= {"a", "b"} and len(variants) == 1
    assert emits(commands, "journey_exited")[0].reason == "done_here"
    small, commands = step(catalog, state, ev("x", n=1), T0)
    assert small.profile.traits == {"visits": 1}
    assert [e.step_id for e in emits(commands, "journey_step")] == ["route"]


def test_split_is_stable_per_customer_and_weighted(tmp_path: Path) -> None:
    text = """
    id: ab
    name: AB
    trigger: {event: x}
    steps:
      - id: s
        type: split
        paths: [{name: a, weight: 80}, {name: b, weight: 20}]
    """
    catalog = catalog_of(tmp_path, text)

    def variant(key: str) -> str:
        _, commands = step(catalog, CustomerState(key=key), ev("x", key=key), T0)
        return str(emits(commands, "journey_step")[0].attributes["variant"])

    picks = [variant(f"c{i}") for i in range(400)]
    assert picks == [variant(f"c{i}") for i in range(400)]
    assert 0.7 < picks.count("a") / len(picks) < 0.9


def test_best_puts_the_most_engaged_channel_first(tmp_path: Path) -> None:
    text = """
    id: best
    name: Best
    trigger: {event: x}
    steps:
      - id: s
        type: send
        channels: [best, email, sms, viber]
        content: {email: {body: e}, sms: {body: s}, viber: {body: v}}
    """
    catalog = catalog_of(tmp_path, text)
    profile = Profile.model_validate(
        {"engagement": {"viber": {"opened": 4, "last_engaged_at": "2026-03-01T00:00:00Z"}}}
    )
    (send,) = sends(step(catalog, CustomerState(key="c1", profile=profile), ev("x"), T0)[1])
    assert send.chain == ("viber", "email", "sms")
    (plain,) = sends(step(catalog, CustomerState(key="c1"), ev("x"), T0)[1])
    assert plain.chain == ("email", "sms", "viber")


def test_quiet_hours_hold_marketing_but_not_transactional(tmp_path: Path) -> None:
    text = """
    id: {name}
    name: Q
    trigger: {{event: x}}
    steps: [{{id: s, type: send, category: {name}, channels: [sms], content: {{sms: {{body: b}}}}}}]
    """
    policies = "default_timezone: Europe/Kyiv\nquiet_hours: {start: '21:00', end: '09:00'}\n"
    catalog = catalog_of(
        tmp_path,
        text.format(name="marketing"),
        text.format(name="transactional"),
        policies=policies,
    )
    late = T0.replace(hour=20)  # 22:00 in Kyiv
    state, commands = step(catalog, CustomerState(key="c1"), ev("x", late), late)
    assert [s.journey_id for s in sends(commands)] == ["transactional"]
    (held,) = scheduled(commands)
    assert held.due == T0.replace(day=3, hour=7)  # 09:00 Kyiv the next morning
    state, commands = fire_next(catalog, state)
    assert [s.journey_id for s in sends(commands)] == ["marketing"]


def test_engagement_fallback_follows_the_channel_actually_used(tmp_path: Path) -> None:
    text = """
    id: eng
    name: Engagement
    trigger: {event: x}
    steps:
      - id: s
        type: send
        channels: [mobile_push, email, sms]
        engagement_fallback: {within: 2h}
        content: {mobile_push: {body: p}, email: {body: e}, sms: {body: s}}
        next: done
      - {id: done, type: exit, reason: engaged_or_exhausted}
    """
    catalog = catalog_of(tmp_path, text)
    state, commands = step(catalog, CustomerState(key="c1"), ev("x"), T0)
    (first,) = sends(commands)
    # the channel agent had no push token and delivered by email instead
    state, _ = step(catalog, state, outcome("message_sent", first, T0, channel="email"), T0)
    state, commands = fire_next(catalog, state)
    (second,) = sends(commands)
    assert second.channel == "sms" and second.send_id != first.send_id and second.position == 2
    state, commands = step(catalog, state, outcome("message_clicked", second, T0), T0 + hours(3))
    assert emits(commands, "journey_exited")[0].reason == "engaged_or_exhausted"
    assert len(cancelled(commands)) == 1 and not state.timers


def test_failed_send_stops_waiting_for_engagement(tmp_path: Path) -> None:
    text = """
    id: eng
    name: Engagement
    trigger: {event: x}
    steps:
      - id: s
        type: send
        channels: [email]
        engagement_fallback: {within: 1d}
        content: {email: {body: e}}
    """
    catalog = catalog_of(tmp_path, text)
    state, commands = step(catalog, CustomerState(key="c1"), ev("x"), T0)
    failed = outcome("message_suppressed", sends(commands)[0], T0, reason="capped")
    state, commands = step(catalog, state, failed, T0)
    assert emits(commands, "journey_exited")[0].reason == "completed"
    assert not state.timers and len(cancelled(commands)) == 1


def test_exit_on_event_with_condition(tmp_path: Path) -> None:
    text = """
    id: pickup
    name: Pickup
    trigger: {event: ready}
    exit_on: [{event: picked_up, when: "event.properties.id == trigger.properties.id"}]
    steps: [{id: w, type: wait, duration: 2d}]
    """
    catalog = catalog_of(tmp_path, text)
    state, _ = step(catalog, CustomerState(key="c1"), ev("ready", id="o1"), T0)
    state, commands = step(catalog, state, ev("picked_up", id="o2"), T0)
    assert commands == [] and state.instances
    state, commands = step(catalog, state, ev("picked_up", id="o1"), T0)
    assert emits(commands, "journey_exited")[0].reason == "exit_event" and not state.instances
