"""What a backend producer may not say on a source topic (issue: forged opens, erasure, timers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from omnistream.domain.events import EventError, check_producer_event, parse_event

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=15)


def raw(**fields: Any) -> bytes:
    base = {"event_id": "e-1", "type": "product_viewed", "source": "site", "customer_id": "c-1",
            "timestamp": "2026-12-03T11:59:00Z"}  # fmt: skip
    return orjson.dumps(base | fields)


def refusal(value: bytes) -> str:
    with pytest.raises(EventError) as caught:
        check_producer_event(parse_event(value), NOW, SKEW)
    return caught.value.reason


@pytest.mark.parametrize(
    "fields",
    [
        {"source": "omnistream", "type": "message_opened"},  # forged engagement
        {"source": "omnistream", "type": "product_viewed"},  # any event under our name
        {"type": "message_unsubscribed"},  # consent withdrawn by a forged outcome
        {"type": "message_bounced"},
        {"type": "message_some_future_outcome"},  # the whole outcome namespace
        {"type": "timer_fired", "properties": {"timer_id": "t"}},  # a journey moved on at once
        {"type": "forget_customer"},  # erasure from a source topic
        {"source": "omnistream", "customer_id": "email:0123456789abcdef"},  # an internal row
    ],
)
def test_reserved_vocabulary_is_refused(fields: dict[str, Any]) -> None:
    assert refusal(raw(**fields)) == "reserved"


def test_reserved_key_prefixes_are_invalid_for_producers() -> None:
    for key in ("email:abc", "phone:abc", "anon:abc", "crm:abc"):
        assert refusal(raw(customer_id=key)) == "invalid"


def test_far_future_timestamp_is_refused_but_skew_within_the_limit_is_not() -> None:
    assert refusal(raw(timestamp="9999-12-31T00:00:00Z")) == "future_timestamp"
    assert refusal(raw(timestamp=(NOW + SKEW + timedelta(seconds=1)).isoformat())) == (
        "future_timestamp"
    )
    near = parse_event(raw(timestamp=(NOW + SKEW).isoformat()))
    check_producer_event(near, NOW, SKEW)  # at the limit: accepted


def test_ordinary_events_pass() -> None:
    for fields in ({}, {"type": "order_placed", "source": "store"}, {"type": "messages_read"}):
        check_producer_event(parse_event(raw(**fields)), NOW, SKEW)
