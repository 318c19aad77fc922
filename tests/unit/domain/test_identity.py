"""Identity rules: identifiers, routing, claims, releases, merges and forgetting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from omnistream.domain.commands import Emit, ScheduleTimer
from omnistream.domain.identity import (
    Claim,
    Release,
    claims_for,
    decide_claim,
    decide_release,
    forget,
    identifier_key,
    identifiers_of,
    merge,
    merge_states,
    resolve,
    route_key,
)
from omnistream.domain.profile import Profile, apply_event
from omnistream.domain.profile_model import MAX_IDENTIFIERS
from omnistream.domain.state import CustomerState, Instance, JourneyRecord, Timer
from tests.unit.domain.helpers import at, ev, outcome

EMAIL = identifier_key("email", "ann@example.com")
PHONE = identifier_key("phone", "+447700900123")


def test_identifier_keys_normalise_and_hide_contact_details() -> None:
    assert EMAIL is not None and PHONE is not None
    assert identifier_key("email", "  ANN@example.com") == EMAIL
    assert identifier_key("phone", "0044 7700 900123") == PHONE
    assert "ann" not in EMAIL and "7700" not in PHONE
    assert EMAIL.startswith("email:") and PHONE.startswith("phone:")
    assert identifier_key("email", "nope") is None
    assert identifier_key("anon", "dev-1") == "anon:dev-1"
    assert identifier_key("crm", 42) == "crm:42"
    assert identifier_key("fax", "1") is None


def test_identifiers_of_reads_every_place_highest_rank_first() -> None:
    event = ev(
        "identify",
        {"traits": {"email": "Ann@example.com", "phone": "+44 7700 900123"}},
        customer_id="c1",
        anonymous_id="dev-1",
        context={"identifiers": {"crm_id": "K-9", "anonymous_id": "dev-2", "email": "bad"}},
    )
    assert identifiers_of(event) == ["c1", "crm:K-9", EMAIL, PHONE, "anon:dev-1", "anon:dev-2"]


def test_traits_of_other_event_types_are_not_identifiers() -> None:
    event = ev("order_placed", {"traits": {"email": "ann@example.com"}}, anonymous_id="d")
    assert identifiers_of(event) == ["anon:d"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"customer_id": "c1", "anonymous_id": "d"}, "c1"),
        ({"anonymous_id": "d"}, "anon:d"),
        ({"anonymous_id": "d", "context": {"identifiers": {"phone": "+447700900123"}}}, PHONE),
        (
            {"customer_id": "email:abc", "source": "omnistream"},
            "email:abc",
        ),  # a system event addressed to a row key
    ],
)
def test_route_key(kwargs: dict[str, object], expected: str) -> None:
    assert route_key(ev("page_viewed", **kwargs)) == expected  # type: ignore[arg-type]


def test_resolve_forwards_only_upwards() -> None:
    assert resolve("anon:d", None) is None
    assert resolve("anon:d", "c1") == "c1"
    assert resolve(PHONE or "", "anon:d") is None
    assert resolve("c1", "c1") is None


@pytest.mark.parametrize(
    ("identifier", "current", "claimer", "accepted"),
    [
        ("anon:d", None, "c1", True),
        ("anon:d", "c1", "c1", True),  # redelivered: same alias
        ("anon:d", "c1", "c2", True),  # latest login owns the device
        ("anon:d", "phone:p", "email:e", True),  # a higher provisional rank takes over
        ("anon:d", "email:e", "phone:p", False),  # a lower one does not
        ("anon:d", "email:e", "email:f", False),  # first provisional claim wins
        ("anon:d", "c1", "email:e", False),  # provisional never beats canonical
        ("email:e", None, "phone:p", False),  # claims only go down in rank
        ("c2", None, "c1", False),  # customer ids are never aliased
        ("anon:d", None, "anon:e", False),
    ],
)
def test_decide_claim(identifier: str, current: str | None, claimer: str, accepted: bool) -> None:
    decision = decide_claim(current, None, Claim(identifier=identifier, customer_key=claimer))
    assert decision.accepted is accepted
    assert decision.alias == (claimer if accepted else current)
    assert decision.handover is None


def test_claim_hands_over_an_existing_row_even_when_redelivered() -> None:
    row = CustomerState(key="anon:d")
    claim = Claim(identifier="anon:d", customer_key="c1")
    for current in (None, "c1"):
        decision = decide_claim(current, row, claim)
        assert decision.handover is not None
        assert decision.handover.into == "c1" and decision.handover.state == row


@pytest.mark.parametrize(
    ("current", "forget_flag", "expected"),
    [
        ("c1", False, (True, False)),
        ("c2", False, (False, False)),
        (None, False, (False, False)),
        ("c1", True, (True, True)),
        (None, True, (False, True)),
        ("c2", True, (False, False)),
    ],
)
def test_decide_release(
    current: str | None, forget_flag: bool, expected: tuple[bool, bool]
) -> None:
    release = Release(identifier="anon:d", customer_key="c1", forget=forget_flag)
    assert decide_release(current, release) == expected


def test_claims_for_claims_new_lower_identifiers_once() -> None:
    state = CustomerState(key="c1")
    login = ev(
        "signed_up",
        {"traits": {"email": "ann@example.com"}},
        customer_id="c1",
        anonymous_id="dev-1",
    )
    state, claims, releases = claims_for(state, login)
    assert [c.identifier for c in claims] == [EMAIL, "anon:dev-1"]
    assert all(c.customer_key == "c1" for c in claims) and releases == []
    again, claims, _ = claims_for(state, login)
    assert claims == [] and again is state


def test_provisional_rows_claim_only_lower_ranks() -> None:
    state = CustomerState(key=PHONE or "")
    event = ev(
        "order_placed",
        anonymous_id="card-1",
        context={"identifiers": {"phone": "+447700900123", "email": "ann@example.com"}},
    )
    _, claims, _ = claims_for(state, event)
    assert [c.identifier for c in claims] == ["anon:card-1"]


def test_identifier_list_is_bounded_and_releases_the_oldest_anonymous_id() -> None:
    state = CustomerState(key="c1")
    state, _, _ = claims_for(
        state,
        ev(
            "identify",
            customer_id="c1",
            anonymous_id="d0",
            context={"identifiers": {"email": "ann@example.com"}},
        ),
    )
    released: list[Release] = []
    for i in range(1, MAX_IDENTIFIERS + 1):
        state, _, releases = claims_for(
            state, ev("page_viewed", customer_id="c1", anonymous_id=f"d{i}")
        )
        released += releases
    assert len(state.profile.identifiers) == MAX_IDENTIFIERS
    assert [r.identifier for r in released] == ["anon:d0", "anon:d1"]
    assert EMAIL in state.profile.identifiers


# ------------------------------------------------------------------ merge


def _inst(journey: str, seq: int, step: str = "wait", timer: str | None = None) -> Instance:
    inst = Instance(
        instance_id=f"{journey}:{seq}",
        journey_id=journey,
        version="v1",
        step_id=step,
        entered_at=at(),
    )
    return inst.model_copy(update={"timer_id": timer}) if timer else inst


def _anon_row() -> CustomerState:
    profile = Profile()
    for event in (
        ev("product_viewed", {"product_id": "shoe"}, anonymous_id="d"),
        ev("product_added_to_cart", {"product_id": "shoe", "price": 50}, anonymous_id="d"),
        ev("identify", {"traits": {"first_name": "Anon", "tier": "new"}}, anonymous_id="d"),
        ev("order_placed", {"order_id": "o-anon", "total": 5}, anonymous_id="d"),
        outcome("opened", "web_push", minutes=2),
    ):
        profile = apply_event(profile, event)
    return CustomerState(
        key="anon:d",
        profile=profile,
        instances={"browse:1": _inst("browse", 1, timer="t-b1"), "cart:1": _inst("cart", 1)},
        timers={
            "t-b1": Timer(timer_id="t-b1", instance_id="browse:1", due=at(60)),
            "t-c1": Timer(timer_id="t-c1", instance_id="cart:1", due=at(30)),
        },
        history={
            "browse": JourneyRecord(entries=1, last_entered_at=at()),
            "cart": JourneyRecord(entries=1, last_entered_at=at()),
        },
        recent_event_ids=["a", "b"],
        seq=1,
    )


def _known_row() -> CustomerState:
    profile = Profile()
    for event in (
        ev(
            "identify",
            {"traits": {"first_name": "Ann", "email": "ann@example.com"}},
            customer_id="c1",
        ),
        ev("order_placed", {"order_id": "o-1", "total": 20}, customer_id="c1"),
        ev("order_placed", {"order_id": "o-anon", "total": 5}, customer_id="c1"),
        outcome("opened", "web_push", minutes=1),
    ):
        profile = apply_event(profile, event)
    return CustomerState(
        key="c1",
        profile=profile,
        instances={"cart:3": _inst("cart", 3)},
        timers={"t-c3": Timer(timer_id="t-c3", instance_id="cart:3", due=at(10))},
        history={"cart": JourneyRecord(entries=3, last_entered_at=at(-10))},
        recent_event_ids=["b", "c"],
        seq=3,
    )


def test_merge_profiles_with_documented_precedence() -> None:
    result = merge(_known_row(), _anon_row())
    p = result.state.profile
    assert p.traits["first_name"] == "Ann" and p.traits["tier"] == "new"
    assert p.addresses["email"] == "ann@example.com"
    assert list(p.cart.items) == ["shoe"]
    assert [v.product_id for v in p.viewed_products] == ["shoe"]
    assert (p.orders.count, p.orders.revenue) == (2, Decimal(25))  # o-anon counted once
    assert p.engagement["web_push"].opened == 2
    assert p.engagement["web_push"].last_engaged_at == at(2)
    assert "anon:d" in p.identifiers


def test_merge_moves_journeys_without_duplicates() -> None:
    result = merge(_known_row(), _anon_row())
    state = result.state
    assert sorted(state.instances) == ["browse:1", "cart:3"]
    assert result.moved == ["browse:1"] and result.dropped == ["cart:1"]
    assert state.timers["t-b1"].instance_id == "browse:1"
    assert "t-c1" not in state.timers
    assert ScheduleTimer(customer_key="c1", timer_id="t-b1", due=at(60)) in result.commands
    exits = [c for c in result.commands if isinstance(c, Emit)]
    assert [(e.journey_id, e.reason) for e in exits] == [("cart", "merged_duplicate")]
    assert state.history["browse"].entries == 1
    assert state.history["cart"].entries == 3  # the dropped duplicate does not count
    assert state.recent_event_ids == ["a", "b", "c"]
    assert state.seq == 3


def test_merge_renames_colliding_ids_and_the_instance_follows_its_timer() -> None:
    known = CustomerState(
        key="c1",
        instances={"x:1": _inst("other", 1)},
        timers={"t1": Timer(timer_id="t1", instance_id="x:1", due=at(5))},
    )
    anon = CustomerState(
        key="anon:d",
        instances={"x:1": _inst("browse", 1, timer="t1").model_copy(update={"instance_id": "x:1"})},
        timers={"t1": Timer(timer_id="t1", instance_id="x:1", due=at(9))},
    )
    state = merge(known, anon).state
    (moved_id,) = set(state.instances) - {"x:1"}
    moved = state.instances[moved_id]
    assert moved.journey_id == "browse" and moved.instance_id == moved_id
    assert moved.timer_id is not None and moved.timer_id != "t1"
    assert state.timers[moved.timer_id].instance_id == moved_id
    assert state.timers["t1"].instance_id == "x:1"


def test_merge_is_idempotent() -> None:
    once = merge(_known_row(), _anon_row())
    twice = merge(once.state, _anon_row())
    assert twice.already_merged
    assert twice.state == once.state


def test_merge_claims_what_the_anonymous_row_had_claimed() -> None:
    anon = _anon_row()
    anon = anon.model_copy(
        update={"profile": anon.profile.model_copy(update={"identifiers": ["anon:card"]})}
    )
    phone_row = anon.model_copy(update={"key": PHONE})
    result = merge(_known_row(), phone_row)
    assert {c.identifier for c in result.claims} == {"anon:card"}
    assert PHONE in result.state.profile.identifiers


def test_merge_states_is_the_state_of_merge() -> None:
    assert merge_states(_known_row(), _anon_row()) == merge(_known_row(), _anon_row()).state


# ------------------------------------------------------------------ forget


def test_forget_lists_aliases_timers_journeys_and_redis_keys() -> None:
    known = merge_states(_known_row(), _anon_row())
    known = known.model_copy(
        update={
            "profile": apply_event(
                known.profile,
                ev("identify", {"traits": {"phone": "+44 7700 900123"}}, customer_id="c1"),
            )
        }
    )
    plan = forget(known)
    assert plan.customer_key == "c1"
    assert {r.identifier for r in plan.releases} == {"anon:d", EMAIL, PHONE}
    assert all(r.forget and r.customer_key == "c1" for r in plan.releases)
    assert {c.timer_id for c in plan.cancel} == {"t-b1", "t-c3"}
    assert {(e.journey_id, e.reason) for e in plan.exits} == {
        ("browse", "forgotten"),
        ("cart", "forgotten"),
    }
    assert plan.redis_patterns == ["omni:*:{c1}", "omni:*:{c1}:*"]


def test_forget_escapes_glob_characters_in_keys() -> None:
    plan = forget(CustomerState(key="c[1]*"))
    assert plan.redis_patterns[0] == "omni:*:{c\\[1\\]\\*}"


def test_merge_keeps_both_sides_recent_events_in_time_order_once() -> None:
    from datetime import UTC, datetime, timedelta

    from omnistream.domain.state import RECENT_EVENTS, CustomerState, EventSummary

    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def summaries(prefix: str, minutes: range) -> list[EventSummary]:
        return [
            EventSummary(event_id=f"{prefix}{m}", type="t", source="site",
                         timestamp=t0 + timedelta(minutes=m))
            for m in minutes
        ]  # fmt: skip

    known = CustomerState(key="c1", recent_events=summaries("k", range(0, 12, 2)))
    anon = CustomerState(key="anon:a", recent_events=summaries("a", range(1, 12, 2)))
    merged = merge(known, anon).state.recent_events
    assert len(merged) == RECENT_EVENTS
    assert [e.timestamp for e in merged] == sorted(e.timestamp for e in merged)
    assert merged[-1].event_id == "a11"
    again = merge(merge(known, anon).state, anon).state.recent_events
    assert again == merged  # idempotent
