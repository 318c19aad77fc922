"""Property tests: apply_event is total and pure, aggregates stay consistent, merges behave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnistream.domain.events import Event
from omnistream.domain.identity import merge
from omnistream.domain.profile import VOCABULARY, Profile, apply_event
from omnistream.domain.state import CustomerState

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = [
    "traits",
    "email",
    "phone",
    "timezone",
    "locale",
    "birthday",
    "first_name",
    "channel",
    "category",
    "granted",
    "token",
    "endpoint",
    "keys",
    "p256dh",
    "auth",
    "chat_id",
    "viber_id",
    "product_id",
    "quantity",
    "price",
    "name",
    "items",
    "order_id",
    "total",
    "currency",
    "store_id",
    "address",
    "permanent",
    "x",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(
        [
            "",
            "email",
            "sms",
            "marketing",
            "a@x.com",
            "+447700900123",
            "p1",
            "Europe/Kyiv",
            "https://push/1",
            "EUR",
            "1990-01-01",
        ]
    )
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
timestamps = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001 (hypothesis wants naive bounds)
    max_value=datetime(2030, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-8))]),
)
types = st.sampled_from([*VOCABULARY, "page_viewed", "timer_fired"])


@st.composite
def any_event(draw: st.DrawFn) -> Event:
    return Event.model_validate(
        {
            "event_id": f"e{draw(st.integers(0, 10**6))}",
            "type": draw(types),
            "source": draw(st.sampled_from(["site", "app", "crm", "store", "omnistream"])),
            "customer_id": draw(st.sampled_from([None, "c1"])),
            "anonymous_id": "a1",
            "timestamp": draw(timestamps),
            "properties": draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)),
            "context": {},
        }
    )


@SETTINGS
@given(st.lists(any_event(), max_size=8), any_event())
def test_apply_event_is_total_and_never_mutates_its_input(
    history: list[Event], event: Event
) -> None:
    profile = Profile()
    for past in history:
        profile = apply_event(profile, past)
    before = profile.model_dump_json()
    after = apply_event(profile, event)
    assert profile.model_dump_json() == before
    assert Profile.model_validate_json(after.model_dump_json()) == after
    assert after.last_seen is None or after.first_seen is not None
    assert after.last_seen is None or after.first_seen <= after.last_seen  # type: ignore[operator]


# ------------------------------------------------------------------ valid activity

money = st.decimals(min_value=0, max_value=10_000, places=2)
products = st.sampled_from([f"p{i}" for i in range(8)])
minutes = st.integers(0, 10_000)


def _event(type_: str, props: dict[str, Any], minute: int, source: str = "site") -> Event:
    return Event.model_validate(
        {
            "event_id": f"{type_}-{minute}",
            "type": type_,
            "source": source,
            "customer_id": "c1",
            "timestamp": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minute),
            "properties": props,
        }
    )


@st.composite
def activity(draw: st.DrawFn, side: str) -> Event:
    kind = draw(st.sampled_from(["view", "add", "order", "open", "sent", "visit", "trait"]))
    minute = draw(minutes)
    if kind == "view":
        return _event("product_viewed", {"product_id": draw(products)}, minute)
    if kind == "add":
        props = {"product_id": draw(products), "quantity": draw(st.integers(1, 3))}
        return _event("product_added_to_cart", props, minute)
    if kind == "order":
        props = {
            "order_id": f"{side}-{draw(st.integers(0, 30))}",
            "total": str(draw(money)),
            "items": [{"product_id": draw(products)}],
        }
        return _event("order_placed", props, minute)
    if kind in ("open", "sent"):
        channel = draw(st.sampled_from(["email", "sms", "mobile_push"]))
        type_ = "message_opened" if kind == "open" else "message_sent"
        return _event(type_, {"channel": channel}, minute, source="omnistream")
    if kind == "visit":
        return _event("store_visited", {"store_id": draw(st.sampled_from(["s1", "s2"]))}, minute)
    traits = {
        draw(st.sampled_from(["tier", "first_name", "pet"])): draw(st.sampled_from(["a", "b"]))
    }
    return _event("identify", {"traits": traits}, minute)


def build(events: list[Event]) -> Profile:
    profile = Profile()
    for event in events:
        profile = apply_event(profile, event)
    return profile


@SETTINGS
@given(st.lists(activity("k"), max_size=40))
def test_order_aggregates_are_consistent(events: list[Event]) -> None:
    profile = build(events)
    first: dict[str, Decimal] = {}
    for event in events:
        if event.type == "order_placed":
            first.setdefault(event.properties["order_id"], Decimal(event.properties["total"]))
    assert profile.orders.count == len(first)
    assert profile.orders.revenue == sum(first.values(), Decimal(0))
    if first:
        assert profile.orders.average_order_value == profile.orders.revenue / len(first)
    else:
        assert profile.orders.average_order_value is None


def row(key: str, events: list[Event]) -> CustomerState:
    return CustomerState(key=key, profile=build(events))


@SETTINGS
@given(st.lists(activity("k"), max_size=15), st.lists(activity("a"), max_size=15))
def test_merge_is_idempotent(known: list[Event], anonymous: list[Event]) -> None:
    k, a = row("c1", known), row("anon:a", anonymous)
    once = merge(k, a).state
    assert merge(once, a).state == once


def _summary(state: CustomerState) -> tuple[Any, ...]:
    p = state.profile
    engagement = {c: (e.sent, e.opened, e.last_engaged_at) for c, e in p.engagement.items()}
    return (
        p.orders.count,
        p.orders.revenue,
        sorted(r.order_id for r in p.orders.recent),
        engagement,
        sorted(p.cart.items),
        sorted(v.product_id for v in p.viewed_products),
        p.store_visits.count,
        p.first_seen,
        p.last_seen,
    )


@SETTINGS
@given(
    st.lists(activity("k"), max_size=10),
    st.lists(activity("a"), max_size=10),
    st.lists(activity("b"), max_size=10),
)
def test_merging_two_anonymous_rows_commutes_except_traits(
    known: list[Event], first: list[Event], second: list[Event]
) -> None:
    k, a, b = row("c1", known), row("anon:a", first), row("anon:b", second)
    ab = merge(merge(k, a).state, b).state
    ba = merge(merge(k, b).state, a).state
    assert _summary(ab) == _summary(ba)


@SETTINGS
@given(st.lists(activity("k"), max_size=15), st.lists(activity("a"), max_size=15))
def test_merge_adds_counters_and_known_traits_win(
    known: list[Event], anonymous: list[Event]
) -> None:
    k, a = row("c1", known), row("anon:a", anonymous)
    merged = merge(k, a).state.profile
    assert merged.orders.count == k.profile.orders.count + a.profile.orders.count
    assert merged.store_visits.count == k.profile.store_visits.count + a.profile.store_visits.count
    for key, value in k.profile.traits.items():
        assert merged.traits[key] == value
    for channel, stats in a.profile.engagement.items():
        mine = k.profile.engagement.get(channel)
        assert merged.engagement[channel].opened == stats.opened + (mine.opened if mine else 0)
