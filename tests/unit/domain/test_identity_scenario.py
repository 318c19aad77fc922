"""Scenario: anonymous browsing -> add to cart -> sign-up on the app -> store purchase by phone.

The runtime's two tables are dicts here, keyed like ``omni.customer-events``; each message is
handled by the pure functions exactly as the customer agent will: forward along an alias, or
claim / release / merge / apply at the row. Partitions are simulated as one FIFO per key,
interleaved in many random orders, with redeliveries (at-least-once), and the outcome must be
the same every time: one customer, one profile, one journey instance, the right aggregates.
"""

from __future__ import annotations

import random
from collections import deque
from decimal import Decimal

import pytest

from omnistream.domain.events import Event
from omnistream.domain.identity import (
    Claim,
    MergeRequest,
    Release,
    claims_for,
    decide_claim,
    decide_release,
    identifier_key,
    merge,
    resolve,
    route_key,
)
from omnistream.domain.profile import apply_event
from omnistream.domain.state import RECENT_EVENT_IDS, CustomerState, Instance, Timer
from tests.unit.domain.helpers import at, ev

Message = Event | Claim | Release | MergeRequest
PHONE = identifier_key("phone", "+447700900123")
EMAIL = identifier_key("email", "ann@example.com")


class World:
    """The two co-partitioned tables and one queue per key (a partition's order for that key)."""

    def __init__(self, rng: random.Random, redeliver: float) -> None:
        self.customers: dict[str, CustomerState] = {}
        self.aliases: dict[str, str] = {}
        self.queues: dict[str, deque[Message]] = {}
        self.rng = rng
        self.redeliver = redeliver

    def send(self, key: str, message: Message) -> None:
        self.queues.setdefault(key, deque()).append(message)

    def run(self) -> None:
        for _ in range(10_000):
            ready = sorted(k for k, q in self.queues.items() if q)
            if not ready:
                return
            key = self.rng.choice(ready)
            message = self.queues[key].popleft()
            self.handle(key, message)
            if self.rng.random() < self.redeliver:  # crash before commit: it comes again
                self.queues[key].appendleft(message)
        raise AssertionError("the messages never settled")

    def handle(self, key: str, message: Message) -> None:
        if isinstance(message, Claim):
            decision = decide_claim(self.aliases.get(key), self.customers.get(key), message)
            if decision.accepted and decision.alias is not None:
                self.aliases[key] = decision.alias
            if decision.handover is not None:
                del self.customers[key]
                self.send(decision.handover.into, decision.handover)
        elif isinstance(message, Release):
            drop_alias, drop_row = decide_release(self.aliases.get(key), message)
            if drop_alias:
                del self.aliases[key]
            if drop_row:
                self.customers.pop(key, None)
        elif isinstance(message, MergeRequest):
            known = self.customers.get(key) or CustomerState(key=key)
            result = merge(known, message.state)
            self.customers[key] = result.state
            for claim in result.claims:
                self.send(claim.identifier, claim)
            for release in result.releases:
                self.send(release.identifier, release)
        else:
            target = resolve(key, self.aliases.get(key))
            if target is not None:
                self.send(target, message)
            else:
                self.apply(key, message)

    def apply(self, key: str, event: Event) -> None:
        """What the customer agent does around the engine for one event."""
        state = self.customers.get(key) or CustomerState(key=key)
        if event.event_id in state.recent_event_ids:
            return
        state = state.model_copy(deep=True)
        state.recent_event_ids = [*state.recent_event_ids, event.event_id][-RECENT_EVENT_IDS:]
        state.profile = apply_event(state.profile, event)
        if event.type == "product_viewed" and not any(
            i.journey_id == "browse_abandonment" for i in state.instances.values()
        ):  # the engine entering the journey, built by hand
            state.seq += 1
            instance_id = f"browse_abandonment:{state.seq}"
            state.instances[instance_id] = Instance(
                instance_id=instance_id,
                journey_id="browse_abandonment",
                version="v1",
                step_id="wait",
                entered_at=event.timestamp,
            )
            timer_id = f"{instance_id}:wait"
            state.timers[timer_id] = Timer(timer_id=timer_id, instance_id=instance_id, due=at(120))
        state, claims, releases = claims_for(state, event)
        self.customers[key] = state
        for claim in claims:
            self.send(claim.identifier, claim)
        for release in releases:
            self.send(release.identifier, release)


def journey_events() -> list[Event]:
    return [
        ev(
            "product_viewed",
            {"product_id": "shoe", "price": "59.90"},
            source="app",
            anonymous_id="app-7",
            minutes=0,
            event_id="v1",
        ),
        ev(
            "product_added_to_cart",
            {"product_id": "shoe", "price": "59.90"},
            source="app",
            anonymous_id="app-7",
            minutes=2,
            event_id="a1",
        ),
        ev(
            "product_added_to_cart",
            {"product_id": "socks", "price": "5"},
            source="app",
            anonymous_id="app-7",
            minutes=3,
            event_id="a2",
        ),
        ev(
            "signed_up",
            {
                "traits": {
                    "email": "Ann@Example.com",
                    "phone": "+44 7700 900123",
                    "first_name": "Ann",
                }
            },
            source="app",
            customer_id="cust-42",
            anonymous_id="app-7",
            minutes=5,
            event_id="s1",
        ),
        ev(
            "order_placed",
            {
                "order_id": "S-1",
                "total": "59.90",
                "currency": "EUR",
                "items": [{"product_id": "shoe"}],
            },
            source="store",
            anonymous_id="card-5512",
            minutes=60,
            event_id="p1",
            context={"identifiers": {"phone": "+44 (0)7700 900123"}},
        ),
        ev(
            "order_placed",  # the POS resends the same receipt with a new event id
            {"order_id": "S-1", "total": "59.90", "currency": "EUR"},
            source="store",
            anonymous_id="card-5512",
            minutes=61,
            event_id="p2",
            context={"identifiers": {"phone": "+447700900123"}},
        ),
    ]


def check(world: World) -> None:
    assert list(world.customers) == ["cust-42"], list(world.customers)
    state = world.customers["cust-42"]
    assert world.aliases == {
        "anon:app-7": "cust-42",
        "anon:card-5512": "cust-42",
        EMAIL: "cust-42",
        PHONE: "cust-42",
    }
    (instance,) = state.instances.values()
    assert (instance.journey_id, instance.step_id) == ("browse_abandonment", "wait")
    assert [t.instance_id for t in state.timers.values()] == [instance.instance_id]
    p = state.profile
    assert (p.orders.count, p.orders.revenue) == (1, Decimal("59.90"))
    assert p.orders.average_order_value == Decimal("59.90")
    assert p.orders.last_order_id == "S-1"
    assert list(p.cart.items) == ["socks"]  # the shoe was bought in the store
    assert [v.product_id for v in p.viewed_products] == ["shoe"]
    assert p.addresses == {"email": "ann@example.com", "sms": "+447700900123"}
    assert p.traits["first_name"] == "Ann"
    assert p.first_seen == at(0) and p.last_seen == at(61)
    assert set(p.identifiers) == {"anon:app-7", "anon:card-5512", EMAIL, PHONE}


def start(seed: int, redeliver: float) -> World:
    world = World(random.Random(seed), redeliver)
    for event in journey_events():
        world.send(route_key(event), event)
    return world


def test_in_order() -> None:
    world = World(random.Random(0), 0.0)
    for event in journey_events():  # each event fully settles before the next one
        world.send(route_key(event), event)
        world.run()
    check(world)


@pytest.mark.parametrize("seed", range(40))
def test_any_interleaving_of_partitions_with_redelivery(seed: int) -> None:
    world = start(seed, redeliver=0.2)
    world.run()
    check(world)


def test_later_anonymous_events_route_to_the_customer() -> None:
    world = World(random.Random(1), 0.0)
    for event in journey_events():
        world.send(route_key(event), event)
    world.run()
    late = ev(
        "product_viewed",
        {"product_id": "hat"},
        source="app",
        anonymous_id="app-7",
        minutes=90,
        event_id="v2",
    )
    world.send(route_key(late), late)
    world.run()
    assert list(world.customers) == ["cust-42"]
    assert [v.product_id for v in world.customers["cust-42"].profile.viewed_products] == [
        "shoe",
        "hat",
    ]
    assert len(world.customers["cust-42"].instances) == 1
