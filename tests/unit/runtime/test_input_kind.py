"""The customer agent's input label (omnistream_customer_inputs_total{kind})."""

from __future__ import annotations

from datetime import UTC, datetime

from omnistream.domain.events import Event
from omnistream.domain.timers import timer_fired_event
from omnistream.domain.vocabulary import BROADCAST_DUE, SYSTEM_SOURCE
from omnistream.runtime.customers import input_kind

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def event(type_: str, source: str) -> Event:
    return Event(event_id="e-1", type=type_, source=source, customer_id="c-1", timestamp=NOW)


def test_each_kind_of_input_has_its_label() -> None:
    assert input_kind(event("order_placed", "app")) == "event"
    assert input_kind(timer_fired_event("c-1", "j:1:t2", NOW)) == "timer"
    assert input_kind(event(BROADCAST_DUE, SYSTEM_SOURCE)) == "broadcast"  # was "outcome"
    assert input_kind(event("message_opened", SYSTEM_SOURCE)) == "outcome"
