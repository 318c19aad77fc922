"""apply_event, one event type at a time, plus every malformed shape we could think of."""

from __future__ import annotations

from typing import Any

import pytest

from omnistream.domain.profile import (
    VOCABULARY,
    Profile,
    apply_event,
    apply_event_with_issues,
)
from omnistream.domain.profile_events import HANDLERS
from tests.unit.domain.helpers import at, ev, order, outcome, run


def test_vocabulary_documents_exactly_the_handled_types() -> None:
    assert set(VOCABULARY) == set(HANDLERS)


# ------------------------------------------------------------------ traits


def test_identify_sets_traits_and_addresses_normalised() -> None:
    p = run(
        ev(
            "identify",
            {
                "traits": {
                    "email": " Ann@Example.com ",
                    "phone": "+44 7700 900123",
                    "first_name": "Ann",
                    "timezone": "Europe/London",
                    "locale": "en_GB",
                    "birthday": "1990-02-28",
                    "tier": "gold",
                    "tags": ["vip", 3],
                }
            },
        )
    )
    assert p.addresses == {"email": "ann@example.com", "sms": "+447700900123"}
    assert p.traits == {
        "email": "ann@example.com",
        "phone": "+447700900123",
        "first_name": "Ann",
        "timezone": "Europe/London",
        "locale": "en-GB",
        "birthday": "1990-02-28",
        "tier": "gold",
        "tags": ["vip", 3],
    }
    assert p.timezone == "Europe/London"
    assert p.locale == "en-GB"


@pytest.mark.parametrize("event_type", ["identify", "signed_up", "profile_updated"])
def test_every_trait_event_type_updates_traits(event_type: str) -> None:
    assert run(ev(event_type, {"traits": {"first_name": "Bo"}})).traits == {"first_name": "Bo"}


def test_null_trait_removes_it_and_its_address() -> None:
    p = run(
        ev("identify", {"traits": {"email": "a@x.com", "tier": "gold"}}),
        ev("profile_updated", {"traits": {"email": None, "tier": None}}),
    )
    assert p.traits == {}
    assert "email" not in p.addresses


def test_later_traits_overwrite_earlier_ones() -> None:
    p = run(
        ev("identify", {"traits": {"email": "a@x.com", "first_name": "A"}}),
        ev("identify", {"traits": {"email": "b@x.com"}}, minutes=1),
    )
    assert p.addresses["email"] == "b@x.com"
    assert p.traits["first_name"] == "A"


@pytest.mark.parametrize(
    ("traits", "kept", "issue"),
    [
        ({"email": "not-an-email", "first_name": "Ann"}, {"first_name": "Ann"}, "email"),
        ({"phone": "call me", "first_name": "Ann"}, {"first_name": "Ann"}, "phone"),
        ({"timezone": "Nowhere/Land"}, {}, "timezone"),
        ({"locale": 12}, {}, "locale"),
        ({"birthday": "yesterday"}, {}, "birthday"),
        ({"first_name": ""}, {}, "first_name"),
        ({"first_name": "x" * 300}, {}, "first_name"),
        ({"nested": {"a": 1}}, {}, "nested"),
        ({"big_list": list(range(51))}, {}, "big_list"),
        ({"list_of_dicts": [{"a": 1}]}, {}, "list_of_dicts"),
        ({"k" * 65: 1}, {}, "identify"),
        ({"": 1}, {}, "identify.traits."),
        ({"nan": float("nan")}, {}, "nan"),
    ],
)
def test_bad_traits_are_skipped_and_reported(
    traits: dict[str, Any], kept: dict[str, Any], issue: str
) -> None:
    profile, issues = apply_event_with_issues(Profile(), ev("identify", {"traits": traits}))
    assert profile.traits == kept
    assert any(i.startswith("identify") and issue in i for i in issues), issues


@pytest.mark.parametrize("traits", ["a string", ["list"], 5, True])
def test_traits_that_are_not_an_object_change_nothing_but_last_seen(traits: Any) -> None:
    profile, issues = apply_event_with_issues(Profile(), ev("identify", {"traits": traits}))
    assert profile == Profile(first_seen=at(), last_seen=at())
    assert issues == ["identify.traits"]


def test_trait_count_is_bounded() -> None:
    many = {f"t{i}": i for i in range(150)}
    profile, issues = apply_event_with_issues(Profile(), ev("identify", {"traits": many}))
    assert len(profile.traits) == 100
    assert "identify.traits:limit" in issues


def test_issues_never_contain_the_values() -> None:
    _, issues = apply_event_with_issues(
        Profile(), ev("identify", {"traits": {"email": "secret@nowhere", "phone": "555-secret"}})
    )
    assert issues and not any("secret" in i for i in issues)


# ------------------------------------------------------------------ consent and addresses


def test_consents_to_defaults_and_updates() -> None:
    p = Profile()
    assert p.consents_to("email", "transactional") is True
    assert p.consents_to("email", "marketing") is False
    p = run(
        ev("consent_updated", {"channel": "email", "category": "marketing", "granted": True}),
        ev("consent_updated", {"channel": "sms", "category": "transactional", "granted": False}),
    )
    assert p.consents == {"email": {"marketing": True}, "sms": {"transactional": False}}
    assert p.consents_to("email", "marketing") is True
    assert p.consents_to("sms", "transactional") is False


@pytest.mark.parametrize(
    "props",
    [
        {},
        {"channel": "email", "category": "marketing"},
        {"channel": "email", "category": "marketing", "granted": "yes"},
        {"channel": "fax", "category": "marketing", "granted": True},
        {"channel": "email", "category": "spam", "granted": True},
        {"channel": ["email"], "category": "marketing", "granted": True},
    ],
)
def test_malformed_consent_is_ignored(props: dict[str, Any]) -> None:
    profile, issues = apply_event_with_issues(Profile(), ev("consent_updated", props))
    assert profile.consents == {}
    assert issues == ["consent_updated.shape"]


def test_push_tokens_keep_the_latest_as_address_and_are_bounded() -> None:
    p = run(*(ev("push_token_registered", {"token": f"tok{i}"}, minutes=i) for i in range(7)))
    assert p.push_tokens == ["tok2", "tok3", "tok4", "tok5", "tok6"]
    assert p.addresses["mobile_push"] == "tok6"
    p = run(ev("push_token_registered", {"token": "tok3"}), profile=p)
    assert p.push_tokens[-1] == "tok3" and len(p.push_tokens) == 5


def test_web_push_subscription() -> None:
    sub = {"endpoint": "https://push.example/1", "keys": {"p256dh": "k", "auth": "a"}}
    p = run(ev("web_push_subscribed", sub), ev("web_push_subscribed", sub))
    assert p.addresses["web_push"] == "https://push.example/1"
    assert [s.endpoint for s in p.web_push_subscriptions] == ["https://push.example/1"]


@pytest.mark.parametrize(
    ("event_type", "props"),
    [
        ("push_token_registered", {}),
        ("push_token_registered", {"token": 123}),
        (
            "web_push_subscribed",
            {"endpoint": "http://insecure", "keys": {"p256dh": "k", "auth": "a"}},
        ),
        ("web_push_subscribed", {"endpoint": "https://x", "keys": "k"}),
        ("web_push_subscribed", {"endpoint": "https://x", "keys": {"p256dh": "k"}}),
        ("telegram_linked", {}),
        ("telegram_linked", {"chat_id": {"id": 1}}),
        ("viber_linked", {"viber_id": ""}),
    ],
)
def test_malformed_address_events_are_ignored(event_type: str, props: dict[str, Any]) -> None:
    profile, issues = apply_event_with_issues(Profile(), ev(event_type, props))
    assert profile.addresses == {} and profile.push_tokens == []
    assert profile.web_push_subscriptions == []
    assert len(issues) == 1 and issues[0].startswith(event_type)


def test_messenger_links() -> None:
    p = run(ev("telegram_linked", {"chat_id": 123456}), ev("viber_linked", {"viber_id": "vb-1"}))
    assert p.addresses == {"telegram": "123456", "viber": "vb-1"}


# ------------------------------------------------------------------ send outcomes


def test_outcome_counters_and_last_engagement() -> None:
    p = run(
        outcome("sent", minutes=0),
        outcome("delivered", minutes=1),
        outcome("opened", minutes=2),
        outcome("clicked", minutes=3),
        outcome("opened", minutes=1.5),  # late webhook: counts, but is not the latest
    )
    e = p.engagement["email"]
    assert (e.sent, e.delivered, e.opened, e.clicked, e.bounced) == (1, 1, 2, 1, 0)
    assert e.last_sent_at == at(0) and e.last_engaged_at == at(3)


def test_unsubscribe_revokes_marketing_only() -> None:
    start = run(ev("consent_updated", {"channel": "sms", "category": "marketing", "granted": True}))
    p = run(outcome("unsubscribed", "sms"), profile=start)
    assert p.consents_to("sms", "marketing") is False
    assert p.consents_to("sms", "transactional") is True


def test_hard_bounce_removes_the_address_and_it_does_not_come_back() -> None:
    start = run(ev("identify", {"traits": {"email": "a@x.com"}}))
    p = run(outcome("bounced", "email"), profile=start)
    assert "email" not in p.addresses
    assert p.undeliverable == {"email": "a@x.com"}
    assert p.engagement["email"].bounced == 1
    p = run(ev("identify", {"traits": {"email": "A@x.com"}}), profile=p)
    assert "email" not in p.addresses  # the same address re-sent by an identify call
    p = run(ev("identify", {"traits": {"email": "new@x.com"}}), profile=p)
    assert p.addresses["email"] == "new@x.com"


def test_soft_bounce_and_stale_bounce_keep_the_address() -> None:
    start = run(ev("identify", {"traits": {"email": "a@x.com"}}))
    soft = run(outcome("bounced", "email", permanent=False), profile=start)
    assert soft.addresses["email"] == "a@x.com" and soft.undeliverable == {}
    stale = run(outcome("bounced", "email", address="old@x.com"), profile=start)
    assert stale.addresses["email"] == "a@x.com"


def test_push_bounce_falls_back_to_the_previous_token() -> None:
    start = run(
        ev("push_token_registered", {"token": "t1"}),
        ev("push_token_registered", {"token": "t2"}),
    )
    p = run(outcome("bounced", "mobile_push", address="t2"), profile=start)
    assert p.push_tokens == ["t1"] and p.addresses["mobile_push"] == "t1"


def test_outcomes_from_outside_omnistream_are_refused() -> None:
    forged = ev("message_opened", {"channel": "email"}, source="crm")
    profile, issues = apply_event_with_issues(Profile(), forged)
    assert profile.engagement == {} and issues == ["message_opened.source"]


@pytest.mark.parametrize("props", [{}, {"channel": "pigeon"}, {"channel": 3}])
def test_outcome_without_known_channel_is_ignored(props: dict[str, Any]) -> None:
    event = ev("message_clicked", props, source="omnistream", customer_id="c1")
    profile, issues = apply_event_with_issues(Profile(), event)
    assert profile.engagement == {} and issues == ["message_clicked.channel"]


# ------------------------------------------------------------------ seen times and cost


def test_unknown_types_only_move_seen_times() -> None:
    p = run(ev("page_viewed", {"url": "/"}, minutes=5), ev("page_viewed", minutes=1))
    assert p == Profile(first_seen=at(1), last_seen=at(5))


def test_system_events_do_not_count_as_customer_activity() -> None:
    p = run(outcome("sent"), ev("timer_fired", source="omnistream", customer_id="c1"))
    assert p.last_seen is None
    assert run(outcome("opened", minutes=3)).last_seen == at(3)


def test_an_event_that_changes_nothing_returns_the_same_object() -> None:
    start = run(ev("page_viewed"), ev("page_viewed", minutes=5))
    assert apply_event(start, ev("page_viewed", minutes=3)) is start


def test_repr_of_a_profile_hides_contact_details() -> None:
    p = run(
        ev("identify", {"traits": {"email": "ann@example.com", "phone": "+447700900123"}}),
        ev("push_token_registered", {"token": "secret-token"}),
    )
    text = repr(p) + str(p)
    for secret in ("ann@example.com", "447700900123", "secret-token"):
        assert secret not in text
    assert "redacted" in text


def test_profile_round_trips_through_json() -> None:
    p = run(
        ev("identify", {"traits": {"email": "a@x.com", "tags": ["a"]}}),
        ev("product_added_to_cart", {"product_id": "s", "price": "9.99"}),
        order("o1", "9.99"),
        outcome("opened"),
    )
    assert Profile.model_validate_json(p.model_dump_json()) == p


# ------------------------------------------------------------------ preferred channel


def _engaged(**channels: tuple[int, float]) -> Profile:
    """channel=(opens, minutes of the last open)."""
    events = []
    for channel, (opens, last) in channels.items():
        events += [outcome("opened", channel, minutes=last - i) for i in range(opens)]
    return run(*events)


DAY = 24 * 60


@pytest.mark.parametrize(
    ("profile", "candidates", "expected"),
    [
        (Profile(), ["email", "sms"], None),
        (_engaged(email=(1, 0)), ["sms", "mobile_push"], None),
        (_engaged(email=(3, 0), mobile_push=(1, 10)), ["email", "mobile_push"], "email"),
        (
            _engaged(email=(9, 0), mobile_push=(2, 31 * DAY)),
            ["email", "mobile_push"],
            "mobile_push",
        ),
        (_engaged(email=(9, 0), mobile_push=(2, 29 * DAY)), ["email", "mobile_push"], "email"),
        (_engaged(email=(2, 5), sms=(2, 9)), ["email", "sms"], "sms"),
        (_engaged(email=(2, 5), sms=(2, 5)), ["sms", "email"], "sms"),
        (_engaged(email=(2, 5), sms=(2, 5)), ["email", "sms"], "email"),
    ],
)
def test_preferred_channel(profile: Profile, candidates: list[str], expected: str | None) -> None:
    assert profile.preferred_channel(candidates) == expected


def test_clicks_count_as_engagement() -> None:
    p = run(outcome("opened", "email"), outcome("clicked", "sms"), outcome("clicked", "sms"))
    assert p.preferred_channel(["email", "sms"]) == "sms"
