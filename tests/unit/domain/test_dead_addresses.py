"""A permanent failure that condemns an address removes it from the profile (issue 18).

``token_unregistered`` (push), ``subscription_gone`` (web push) and ``address_invalid`` name
the address the send carried; the profile drops exactly that one, so the next send skips the
channel (the dispatcher reports ``no_address`` and falls back) instead of failing on it again.
"""

from __future__ import annotations

import orjson

from omnistream.channels.outcomes import not_delivered
from omnistream.domain.profile import apply_event_with_issues
from tests.unit.channels.factory import T0, make_send
from tests.unit.domain.helpers import ev, outcome, run

TOKENS = (
    ev("push_token_registered", {"token": "t-old"}),
    ev("push_token_registered", {"token": "t-dead"}),
)


def test_unregistered_token_is_dropped_and_the_previous_one_used() -> None:
    start = run(*TOKENS)
    p = run(
        outcome("failed", "mobile_push", reason="token_unregistered", address="t-dead"),
        profile=start,
    )
    assert p.push_tokens == ["t-old"] and p.addresses["mobile_push"] == "t-old"
    assert p.undeliverable == {"mobile_push": "t-dead"}
    assert p.send_address("mobile_push") == "t-old"


def test_invalid_address_is_removed_and_a_new_one_is_taken() -> None:
    start = run(ev("identify", {"traits": {"email": "gone@x.com"}}))
    p = run(
        outcome("failed", "email", reason="address_invalid", address="gone@x.com"), profile=start
    )
    assert "email" not in p.addresses and p.send_address("email") is None
    p = run(ev("identify", {"traits": {"email": "gone@x.com"}}), profile=p)
    assert "email" not in p.addresses  # the dead address is not taken back
    p = run(ev("identify", {"traits": {"email": "new@x.com"}}), profile=p)
    assert p.addresses["email"] == "new@x.com"


def test_web_push_failure_names_the_subscription_json_and_drops_its_endpoint() -> None:
    keys = {"p256dh": "BPk", "auth": "au"}
    start = run(ev("web_push_subscribed", {"endpoint": "https://push.example/s1", "keys": keys}))
    sent = start.send_address("web_push")
    assert sent is not None and orjson.loads(sent)["endpoint"] == "https://push.example/s1"
    p = run(outcome("failed", "web_push", reason="subscription_gone", address=sent), profile=start)
    assert p.web_push_subscriptions == [] and "web_push" not in p.addresses


def test_other_failures_and_stale_addresses_keep_the_address() -> None:
    start = run(*TOKENS)
    transient = outcome("failed", "mobile_push", reason="provider_unavailable", address="t-dead")
    blocked = outcome("failed", "mobile_push", reason="recipient_blocked", address="t-dead")
    stale = outcome("failed", "mobile_push", reason="token_unregistered", address="t-older")
    assert run(transient, blocked, profile=start).addresses["mobile_push"] == "t-dead"
    assert run(stale, profile=start).addresses["mobile_push"] == "t-dead"


def test_a_failure_without_the_address_changes_nothing_and_says_so() -> None:
    start = run(*TOKENS)
    event = outcome("failed", "mobile_push", reason="token_unregistered")
    profile, issues = apply_event_with_issues(start, event)
    assert profile == start and issues == ["message_failed.address"]


def test_a_forged_failure_is_refused() -> None:
    start = run(*TOKENS)
    forged = ev(
        "message_failed",
        {"channel": "mobile_push", "reason": "token_unregistered", "address": "t-dead"},
        source="crm",
        customer_id="c1",
    )
    profile, issues = apply_event_with_issues(start, forged)
    assert profile == start and issues == ["message_failed.source"]


def test_the_channel_agent_names_the_dead_address_on_the_failure() -> None:
    send = make_send(
        chain=("mobile_push", "email"),
        addresses={"mobile_push": "t-dead", "email": "a@x.com"},
    )
    outcomes, forward = not_delivered(send, T0, "fcm", "failed", "token_unregistered")
    assert outcomes[0].type == "message_failed"
    assert outcomes[0].properties["address"] == "t-dead"
    assert forward is not None and forward.channel == "email"
    others, _ = not_delivered(send, T0, "fcm", "failed", "http_400")
    assert "address" not in others[0].properties  # no address on events that do not need one
