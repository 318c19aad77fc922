"""Engine properties over random input sequences against the sample journeys."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnistream.domain.commands import CancelTimer, Command, Emit, ScheduleTimer, Send
from omnistream.domain.events import Event, key_fields
from omnistream.domain.profile import Profile
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.journey.loader import load_catalog
from tests.unit.journey.helpers import T0, timer_event

CATALOG = load_catalog(Path(__file__).resolve().parents[3] / "journeys")
UNCONDITIONAL_ENDS: dict[str, frozenset[str]] = {
    journey.id: frozenset(
        [m.event for m in journey.exit_on if m.when is None]
        + [g.event for g in [journey.goal] if g is not None and g.exit and g.when is None]
    )
    for journey in CATALOG.journeys.values()
}
ITEMS = [
    {"product_id": "sneakers-42", "quantity": 1},
    {"product_id": "dog-food-10kg"},
    {"product_id": "bp-meds-30d"},
    {"product_id": "book-42"},
]
CUSTOMER_EVENTS: dict[str, dict[str, Any]] = {
    "cart_updated": {"items": ITEMS},
    "cart_cleared": {},
    "order_placed": {"order_id": "o1", "total": 120, "items": ITEMS},
    "product_viewed": {"product_id": "sneakers-42"},
    "signed_up": {"traits": {"first_name": "A", "birthday": "1990-03-04", "email": "a@b.co"}},
    "lab_results_ready": {},
    "lab_results_viewed": {},
    "order_ready_for_pickup": {"order_id": "o1"},
    "order_picked_up": {"order_id": "o1"},
    "wishlist_item_in_stock": {"product_id": "book-42", "title": "T"},
}
SYSTEM = ["fire", "repeat", "stale", "opened", "sent_elsewhere", "failed"]
OUTCOMES = ["clicked", "fallback", "failed_last", "suppressed", "bounced", "delivery_failed"]
ACTIONS = st.lists(
    st.tuples(st.sampled_from([*CUSTOMER_EVENTS, *SYSTEM, *OUTCOMES]), st.integers(0, 3 * 24 * 60)),
    max_size=30,
)
PROFILE = Profile(
    traits={"timezone": "Europe/Kyiv"},
    addresses={"email": "a@b.co", "sms": "+380501234567"},
)


class Run:
    """Drives the engine and checks the invariants after every input."""

    def __init__(self) -> None:
        self.state = CustomerState(key="c-42", profile=PROFILE)
        self.now = T0
        self.log: list[list[Command]] = []
        self.scheduled: set[str] = set()
        self.cancelled: set[str] = set()
        self.fired: set[str] = set()
        self.sends: list[Send] = []
        self.last: Event | None = None
        self.n = 0
        self.exited: set[str] = set()

    def feed(self, event: Event, now: datetime) -> None:
        before = self.state
        snapshot = before.model_dump()
        after, commands = step(CATALOG, before, event, now)
        assert before.model_dump() == snapshot, "step mutated its input"
        again, repeated = step(CATALOG, after, event, now)
        assert again is after and repeated == [], "a repeated input changed something"
        added = set(after.timers) - set(before.timers)
        removed = set(before.timers) - set(after.timers)
        fired = event.properties.get("timer_id") if event.type == "timer_fired" else None
        if fired in before.timers:
            self.fired.add(str(fired))
        assert {c.timer_id for c in commands if isinstance(c, ScheduleTimer)} == added
        assert {c.timer_id for c in commands if isinstance(c, CancelTimer)} == removed - {fired}
        self.scheduled |= added
        self.cancelled |= {c.timer_id for c in commands if isinstance(c, CancelTimer)}
        self.sends += [c for c in commands if isinstance(c, Send)]
        self._no_send_after_exit(commands)
        self._ends_on_exit_and_goal(before, after, event)
        self._check(after)
        self.state, self.last = after, event
        self.log.append(commands)

    def _check(self, state: CustomerState) -> None:
        for instance in state.instances.values():
            journey = CATALOG.journeys[instance.journey_id]
            assert journey.step_by_id(instance.step_id) is not None, "unknown step"
            assert instance.timer_id in state.timers, "a live instance without its timer"
        for timer in state.timers.values():
            if timer.purpose != "trigger":
                assert state.instances[timer.instance_id].timer_id == timer.timer_id

    def _no_send_after_exit(self, commands: list[Command]) -> None:
        """No send ever names an instance that has exited (in this input or before)."""
        for command in commands:
            if isinstance(command, Send):
                assert command.instance_id not in self.exited, "a send after the exit"
            elif isinstance(command, Emit) and command.name == "journey_exited":
                self.exited.add(str(command.attributes["instance_id"]))

    def _ends_on_exit_and_goal(
        self, before: CustomerState, after: CustomerState, event: Event
    ) -> None:
        """An unconditional ``exit_on`` / exiting ``goal`` event ends every live instance of
        its journey, whatever it waits for (hold, window, wait, wait_for, outcome)."""
        if event.source == "omnistream":
            return
        for instance_id, instance in before.instances.items():
            if event.type in UNCONDITIONAL_ENDS.get(instance.journey_id, ()):
                assert instance_id not in after.instances, f"{event.type} left it running"
                assert instance_id in self.exited

    def event(self, kind: str, **overrides: Any) -> Event:
        self.n += 1
        data: dict[str, Any] = {
            "event_id": f"ev-{self.n}",
            "type": kind,
            "source": "site",
            "timestamp": self.now,
            "properties": CUSTOMER_EVENTS.get(kind, {}),
            **key_fields(self.state.key),
        }
        data.update(overrides)
        return Event.model_validate(data)

    def fire_due(self, until: datetime) -> None:
        while self.state.timers:
            timer = min(self.state.timers.values(), key=lambda t: (t.due, t.timer_id))
            if timer.due > until:
                return
            self.now = max(self.now, timer.due)
            self.feed(timer_event(self.state, timer.timer_id), self.now)

    def outcome(self, kind: str, **props: Any) -> None:
        if not self.sends:
            return
        send = self.sends[-1]
        properties = {
            "send_id": send.send_id,
            "instance_id": send.instance_id,
            "journey_id": send.journey_id,
            "step_id": send.step_id,
            "channel": send.channel,
            **props,
        }
        self.feed(self.event(kind, source="omnistream", properties=properties), self.now)

    def delivery_outcome(self, kind: str) -> None:
        """What the channel agent and provider receipts report for the latest send."""
        if not self.sends:
            return
        send = self.sends[-1]
        if kind == "clicked":
            self.outcome("message_clicked")
        elif kind == "fallback" and send.next_channel is not None:
            self.outcome("message_fallback", reason="no_consent", to_channel=send.next_channel)
        elif kind == "failed_last":
            self.outcome("message_failed", channel=send.chain[-1], reason="provider_4xx")
        elif kind == "suppressed":
            self.outcome("message_suppressed", channel=send.chain[-1], reason="cap_global")
        elif kind in ("bounced", "delivery_failed"):  # receipts: a send id, no instance id
            props = {"send_id": send.send_id, "provider": "webhook", "status": kind}
            self.feed(
                self.event(f"message_{kind}", source="omnistream", properties=props), self.now
            )

    def act(self, kind: str, minutes: int) -> None:
        target = self.now + timedelta(minutes=minutes)
        self.fire_due(target)
        self.now = target
        if kind == "fire":
            self.fire_due(self.now + timedelta(days=400))
        elif kind == "repeat" and self.last is not None:
            self.feed(self.last, self.now)
        elif kind == "stale":
            stale = {"timer_id": f"gone-{self.n}", "instance_id": "x"}
            self.feed(self.event("timer_fired", source="omnistream", properties=stale), self.now)
        elif kind == "opened":
            self.outcome("message_opened")
        elif kind == "sent_elsewhere" and self.sends:
            self.outcome("message_sent", channel=self.sends[-1].chain[-1])
        elif kind == "failed":
            self.outcome("message_failed", reason="provider_4xx")
        elif kind in OUTCOMES:
            self.delivery_outcome(kind)
        elif kind in CUSTOMER_EVENTS:
            self.feed(self.event(kind), self.now)


def play(actions: list[tuple[str, int]]) -> Run:
    run = Run()
    for kind, minutes in actions:
        run.act(kind, minutes)
    run.fire_due(run.now + timedelta(days=300))
    return run


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(ACTIONS)
def test_engine_invariants_hold_and_every_timer_is_fired_or_cancelled(
    actions: list[tuple[str, int]],
) -> None:
    run = play(actions)
    pending = set(run.state.timers)
    assert run.scheduled == run.fired | run.cancelled | pending
    assert not (run.fired & run.cancelled)
    # after draining, only yearly date triggers may remain armed
    assert all(run.state.timers[t].purpose == "trigger" for t in pending)
    assert not run.state.instances


ENDINGS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                *("cart_updated", "wishlist_item_in_stock", "order_placed", "cart_cleared"),
                *("fire", "opened", "failed", "sent_elsewhere", *OUTCOMES),
            ]
        ),
        st.integers(0, 2 * 24 * 60),
    ),
    max_size=30,
)


@FAST
@given(ENDINGS)
def test_no_send_after_an_exit_or_goal_event(actions: list[tuple[str, int]]) -> None:
    """Checked after every input by ``Run``; here entries, purchases, cart clears, outcomes,
    receipts and timer firings are interleaved at random, so every waiting state meets them."""
    play(actions)


@FAST
@given(ACTIONS)
def test_engine_is_deterministic(actions: list[tuple[str, int]]) -> None:
    first, second = play(actions), play(actions)
    assert first.log == second.log
    assert first.state.model_dump() == second.state.model_dump()
