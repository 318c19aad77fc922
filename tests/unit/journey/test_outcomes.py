"""Send outcomes steer the journey (issue 18): delivery fallback, receipts, edges, windows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from omnistream.domain.commands import Emit, Send
from omnistream.domain.events import Event, key_fields
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.journey.loader import JourneyLoadError
from omnistream.journey.model import Catalog
from tests.unit.journey.helpers import T0, catalog_of, ev, fire_next, hours, outcome, sends

CHAIN = """
id: books
name: Bookstore
trigger: {event: x}
steps:
  - id: s
    type: send
    channels: [mobile_push, email, sms]
    engagement_fallback: {within: 6h}
    content: {mobile_push: {body: p}, email: {body: e}, sms: {body: s}}
    next: done
  - {id: done, type: exit, reason: finished}
"""


@pytest.fixture
def chain(tmp_path: Path) -> Catalog:
    return catalog_of(tmp_path, CHAIN)


def emits(commands: list[Any], name: str) -> list[Emit]:
    return [c for c in commands if isinstance(c, Emit) and c.name == name]


def receipt(kind: str, send: Send, at: Any, **extra: Any) -> Event:
    """A provider receipt as ``channels/receipts.py`` makes it: a send id, no instance id."""
    props = {"send_id": send.send_id, "provider": "webhook", "status": kind, **extra}
    return Event(
        event_id=f"rcpt-{kind}-{send.send_id}",
        type=kind,
        source="omnistream",
        timestamp=at,
        properties=props,
        **key_fields(send.customer_key),
    )


def start(catalog: Catalog) -> tuple[CustomerState, Send]:
    state, commands = step(catalog, CustomerState(key="c1"), ev("x"), T0)
    (send,) = sends(commands)
    return state, send


def test_failed_push_with_delivery_fallback_keeps_the_chain_going(chain: Catalog) -> None:
    state, push = start(chain)
    # the channel agent: push failed at the provider, fell back to email, the email went out
    failed = outcome("message_failed", push, T0, reason="provider_4xx")
    state, commands = step(chain, state, failed, T0)
    assert not emits(commands, "journey_exited") and state.instances
    fallback = outcome("message_fallback", push, T0, reason="provider_4xx", to_channel="email")
    state, _ = step(chain, state, fallback, T0)
    state, _ = step(chain, state, outcome("message_sent", push, T0, channel="email"), T0)
    state, commands = fire_next(chain, state)  # the email's window passes unopened
    (sms,) = sends(commands)
    assert sms.channel == "sms" and sms.send_id != push.send_id


def test_bounced_email_falls_back_to_sms_at_once(chain: Catalog) -> None:
    state, push = start(chain)
    state, _ = step(chain, state, outcome("message_sent", push, T0), T0)
    state, commands = fire_next(chain, state)  # push not opened in 6 h
    (email,) = sends(commands)
    assert email.channel == "email"
    state, _ = step(chain, state, outcome("message_sent", email, T0 + hours(6)), T0 + hours(6))
    bounced_at = T0 + hours(7)
    state, commands = step(chain, state, receipt("message_bounced", email, bounced_at), bounced_at)
    (sms,) = sends(commands)
    assert sms.channel == "sms" and sms.caused_at == bounced_at


def test_delivery_failed_receipt_on_the_last_channel_ends_the_wait(chain: Catalog) -> None:
    state, push = start(chain)
    state, _ = step(chain, state, outcome("message_sent", push, T0, channel="sms"), T0)
    at = T0 + hours(1)
    state, commands = step(chain, state, receipt("message_delivery_failed", push, at), at)
    assert [e.reason for e in emits(commands, "journey_exited")] == ["finished"]
    assert not state.timers and not state.instances


def test_a_receipt_for_an_older_attempt_changes_nothing(chain: Catalog) -> None:
    state, push = start(chain)
    state, _ = step(chain, state, outcome("message_sent", push, T0), T0)
    state, commands = fire_next(chain, state)
    assert [s.channel for s in sends(commands)] == ["email"]
    at = T0 + hours(7)
    after, commands = step(chain, state, receipt("message_bounced", push, at), at)
    assert not sends(commands) and after.instances == state.instances


EDGES = """
id: edges
name: Edges
trigger: {event: x}
steps:
  - id: s
    type: send
    channels: [mobile_push, email, sms]
    engagement_fallback: {windows: {mobile_push: 6h, email: 2d, sms: 1d}}
    content: {mobile_push: {body: p}, email: {body: e}, sms: {body: s}}
    on_clicked: clicked
    on_opened: opened
    on_failed: failed
    on_no_engagement: ignored
  - {id: clicked, type: exit, reason: clicked}
  - {id: opened, type: exit, reason: opened}
  - {id: failed, type: exit, reason: failed}
  - {id: ignored, type: exit, reason: ignored}
"""


@pytest.fixture
def edges(tmp_path: Path) -> Catalog:
    return catalog_of(tmp_path, EDGES)


def exit_reasons(commands: list[Any]) -> list[str | None]:
    return [e.reason for e in emits(commands, "journey_exited")]


def test_each_channel_has_its_own_window(edges: Catalog) -> None:
    state, _ = start(edges)
    state, commands = fire_next(edges, state)
    (email,) = sends(commands)
    assert email.caused_at == T0 + hours(6)
    state, commands = fire_next(edges, state)
    (sms,) = sends(commands)
    assert sms.caused_at == T0 + hours(6 + 48) and sms.channel == "sms"
    state, commands = fire_next(edges, state)
    assert exit_reasons(commands) == ["ignored"]


def test_delivery_fallback_starts_the_window_of_the_channel_used(edges: Catalog) -> None:
    state, push = start(edges)
    at = T0 + hours(0.01)
    fallback = outcome("message_fallback", push, at, reason="no_consent", to_channel="email")
    state, _ = step(edges, state, fallback, at)
    state, _ = step(edges, state, outcome("message_sent", push, at, channel="email"), at)
    (timer,) = state.timers.values()
    assert timer.due == at + hours(48)  # the email's window, not the push's 6 h


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("message_clicked", "clicked"), ("message_opened", "opened")],
)
def test_engagement_edges(edges: Catalog, kind: str, reason: str) -> None:
    state, push = start(edges)
    state, commands = fire_next(edges, state)
    # a late open of the first push still counts: it is one of the step's sends
    at = T0 + hours(7)
    state, commands = step(edges, state, outcome(kind, push, at), at)
    assert exit_reasons(commands) == [reason] and not state.timers


def test_failed_on_every_channel_takes_on_failed(edges: Catalog) -> None:
    state, push = start(edges)
    for channel, nxt in (("mobile_push", "email"), ("email", "sms")):
        failed = outcome("message_failed", push, T0, channel=channel, reason="provider_4xx")
        state, commands = step(edges, state, failed, T0)
        assert not commands
        moved = outcome("message_fallback", push, T0, channel=channel, to_channel=nxt)
        state, _ = step(edges, state, moved, T0)
    failed = outcome("message_failed", push, T0, channel="sms", reason="provider_4xx")
    state, commands = step(edges, state, failed, T0)
    assert exit_reasons(commands) == ["failed"] and not sends(commands)


def test_suppressed_send_takes_on_failed(edges: Catalog) -> None:
    state, push = start(edges)
    capped = outcome("message_suppressed", push, T0, channel="sms", reason="cap_global")
    _, commands = step(edges, state, capped, T0)
    assert exit_reasons(commands) == ["failed"]


ON_SENT = """
id: sent
name: Sent
trigger: {event: x}
steps:
  - id: s
    type: send
    category: transactional
    channels: [sms]
    content: {sms: {body: s}}
    on_sent: ok
    on_failed: call_centre
  - {id: ok, type: exit, reason: ok}
  - {id: call_centre, type: update_profile, add_tags: [call_me]}
"""


def test_on_sent_and_on_failed_wait_for_the_delivery_outcome(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, ON_SENT)
    state, sms = start(catalog)
    assert state.instances  # waits for the channel agent
    _, commands = step(catalog, state, outcome("message_sent", sms, T0), T0)
    assert exit_reasons(commands) == ["ok"]
    failed = outcome("message_failed", sms, T0, reason="provider_4xx")
    after, commands = step(catalog, state, failed, T0)
    assert exit_reasons(commands) == ["completed"]
    assert after.profile.traits["tags"] == ["call_me"]
    _, commands = fire_next(catalog, state)  # no answer within the outcome wait: next (the end)
    assert exit_reasons(commands) == ["completed"] and commands[-1].step_id == "s"


TOGETHER = """
id: anna
name: Offer on two channels
trigger: {event: x}
steps:
  - id: offer
    type: send
    together: true
    channels: [email, mobile_push]
    content: {email: {subject: "-10%", body: e}, mobile_push: {body: p}}
"""


def test_together_sends_every_channel_as_one_touch(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, TOGETHER)
    _, commands = step(catalog, CustomerState(key="c1"), ev("x"), T0)
    email, push = sends(commands)
    assert (email.chain, push.chain) == (("email",), ("mobile_push",))
    assert email.send_id != push.send_id
    assert email.touch_id is not None and email.touch_id == push.touch_id
    assert email.cap_member == push.cap_member == email.touch_id
    assert b"touch_id" in email.to_json()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            EDGES.replace(
                "engagement_fallback: {windows: {mobile_push: 6h, email: 2d, sms: 1d}}", ""
            ),
            "need(s) an engagement_fallback window",
        ),
        (EDGES.replace("sms: 1d}", "}"), "no engagement window for channel(s) sms"),
        (
            TOGETHER.replace("together: true", "together: true\n    on_failed: offer"),
            "takes no engagement_fallback",
        ),
    ],
)
def test_outcome_edges_are_checked_at_load(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(JourneyLoadError, match=re.escape(message)):
        catalog_of(tmp_path, text)


def test_unknown_outcome_target_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(JourneyLoadError, match="unknown step 'nowhere'"):
        catalog_of(tmp_path, EDGES.replace("on_failed: failed", "on_failed: nowhere"))
