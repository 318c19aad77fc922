"""The event envelope: valid events parse, every bad payload yields a precise EventError."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnistream.domain.events import (
    MAX_DEPTH,
    MAX_EVENT_BYTES,
    Event,
    EventError,
    event_json_schema,
    key_fields,
    parse_event,
)

VALID: dict[str, Any] = {
    "event_id": "e-1",
    "type": "cart_updated",
    "source": "site",
    "anonymous_id": "cookie-123",
    "timestamp": "2026-11-24T10:00:00Z",
    "properties": {"items": [{"sku": "sneakers-42", "qty": 1}]},
}


def raw(**changes: Any) -> bytes:
    data = {**VALID, **changes}
    return orjson.dumps({k: v for k, v in data.items() if v is not None})


def test_valid_event_parses_with_anonymous_key() -> None:
    event = parse_event(raw())
    assert event.type == "cart_updated"
    assert event.customer_key == "anon:cookie-123"
    assert event.properties["items"][0]["sku"] == "sneakers-42"
    assert event.timestamp.utcoffset() is not None


def test_customer_id_wins_the_key() -> None:
    assert parse_event(raw(customer_id="c-9")).customer_key == "c-9"


def test_round_trip_through_json() -> None:
    event = parse_event(raw(customer_id="c-9", context={"page": "/cart"}))
    assert parse_event(event.to_json()) == event


@pytest.mark.parametrize(
    ("payload", "reason", "fragment"),
    [
        (b"", "empty", "no value"),
        (b"{not json", "malformed_json", ""),
        (b"[1, 2]", "not_an_object", "list"),
        (b'"text"', "not_an_object", "str"),
        (raw(anonymous_id=None), "invalid", "customer_id or anonymous_id"),
        (raw(timestamp="2026-11-24T10:00:00"), "invalid", "UTC offset"),
        (raw(timestamp="yesterday"), "invalid", "timestamp"),
        (raw(type="Cart Updated"), "invalid", "type"),
        (raw(source="fax"), "invalid", "source"),
        (raw(event_id=""), "invalid", "event_id"),
        (raw(event_id=12), "invalid", "event_id"),
        (raw(properties=[1]), "invalid", "properties"),
        (orjson.dumps({**VALID, "surprise": 1}), "invalid", "surprise"),
        (raw(customer_id="email:abc"), "invalid", "must not start with"),
        (raw(customer_id="anon:cookie"), "invalid", "must not start with"),
    ],
)
def test_bad_payloads_have_precise_reasons(payload: bytes, reason: str, fragment: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(payload)
    assert caught.value.reason == reason
    assert fragment in caught.value.detail


def test_too_large_is_rejected_before_decoding() -> None:
    big = raw(properties={"blob": "x" * MAX_EVENT_BYTES})
    with pytest.raises(EventError) as caught:
        parse_event(big)
    assert caught.value.reason == "too_large"
    assert str(MAX_EVENT_BYTES) in caught.value.detail


def test_too_deep_is_rejected() -> None:
    nested: Any = "leaf"
    for _ in range(MAX_DEPTH + 1):
        nested = {"n": nested}
    with pytest.raises(EventError) as caught:
        parse_event(raw(properties=nested))
    assert caught.value.reason == "too_deep"


def test_depth_at_the_limit_is_accepted() -> None:
    nested: Any = "leaf"
    for _ in range(MAX_DEPTH - 2):  # envelope + properties levels count too
        nested = {"n": nested}
    assert parse_event(raw(properties=nested)).properties


def test_key_fields_inverts_customer_key() -> None:
    for event in (parse_event(raw()), parse_event(raw(customer_id="c-1", anonymous_id=None))):
        rebuilt = Event(
            event_id="x", type="t", source="omnistream", timestamp=event.timestamp,
            **key_fields(event.customer_key),
        )  # fmt: skip
        assert rebuilt.customer_key == event.customer_key


def test_schema_describes_required_fields() -> None:
    schema = event_json_schema()
    assert set(schema["required"]) >= {"event_id", "type", "source", "timestamp"}
    assert schema["additionalProperties"] is False
    json.dumps(schema)  # serialisable


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_event_error(payload: bytes) -> None:
    try:
        parse_event(payload)
    except EventError as exc:
        assert exc.reason in {"empty", "malformed_json", "not_an_object", "too_deep", "invalid"}
        assert exc.detail


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([*VALID, "customer_id", "context", "x"]), json_values))
def test_random_envelopes_either_parse_or_say_why(data: dict[str, Any]) -> None:
    try:
        event = parse_event(orjson.dumps(data))
    except EventError as exc:
        assert exc.reason in {"too_deep", "invalid"}
        assert ":" in exc.detail or exc.reason == "too_deep"
    else:
        assert event.customer_id is not None or event.anonymous_id is not None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(VALID)), json_values)
def test_one_field_mutated(field: str, value: Any) -> None:
    data = {**VALID, field: value}
    try:
        parse_event(orjson.dumps(data))
    except EventError as exc:
        assert exc.reason in {"invalid", "too_deep"}
        if exc.reason == "invalid":
            assert exc.detail.startswith(field) or "anonymous_id" in exc.detail
