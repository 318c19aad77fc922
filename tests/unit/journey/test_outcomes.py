"""Send outcomes steer the journey (issue 18): delivery fallback, receipts, edges, windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from omnistream.domain.commands import Emit, Send
from omnistream.domain.events import Event, key_fields
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
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
