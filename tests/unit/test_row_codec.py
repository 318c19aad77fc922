"""The customer row codec writes exactly the bytes the earlier codec wrote, and round-trips.

Rows already in tables and changelogs were written by ``orjson.dumps(model_dump(mode="json",
exclude_defaults=True))``; the faster encoder must not change a byte of them (timers' index
rebuild also relies on empty fields being left out, e.g. ``b'"timers"' not in raw``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.bench_state import typical_row
from omnistream.domain.profile import Profile
from omnistream.domain.state import (
    CustomerState,
    EventSummary,
    Instance,
    JourneyRecord,
    Timer,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def old_encoding(row: CustomerState) -> bytes:
    return orjson.dumps(row.model_dump(mode="json", exclude_defaults=True))


def busy_row() -> CustomerState:
    """Timers, instances, history, unicode, decimals and a non-UTC offset."""
    kyiv = timezone(timedelta(hours=2))
    instance = Instance(
        instance_id="welcome:1",
        journey_id="welcome",
        version="abc123",
        step_id="wait_1d",
        entered_at=T0,
        trigger={"event_id": "e1", "properties": {"name": "Zoë 😀", "n": 1.5, "xs": [1, None]}},
        vars={"discount": 10, "note": 'ünïcödé \u2028 "quoted" \\ back'},
        timer_id="welcome:1:t2",
        attempt=1,
        chain=("email", "sms"),
        send_ids=("s-1",),
    )
    timers = {
        "welcome:1:t2": Timer(
            timer_id="welcome:1:t2",
            instance_id="welcome:1",
            due=datetime(2026, 3, 3, 9, 0, tzinfo=kyiv),
            purpose="timeout",
            journey_id="welcome",
            step_id="wait_1d",
        ),
        "birthday:trigger:3": Timer(
            timer_id="birthday:trigger:3",
            instance_id="",
            due=T0 + timedelta(days=30),
            purpose="trigger",
            journey_id="birthday",
            payload={"key": "1990-03-04|Europe/Kyiv", "repeat": 0},
        ),
    }
    return CustomerState(
        key="cust:Zoë",
        profile=Profile(
            traits={"first_name": "Zoë", "city": "Київ", "score": 0.1, "big": 10**18},
            addresses={"email": "zoe@example.com"},
        ),
        instances={instance.instance_id: instance},
        timers=timers,
        history={"welcome": JourneyRecord(entries=1, last_entered_at=T0)},
        recent_event_ids=["e1", "e2"],
        recent_events=[EventSummary(event_id="e2", type="signed_up", source="app", timestamp=T0)],
        seq=2,
    )


ROWS = {
    "typical": typical_row,
    "empty": lambda: CustomerState(key="anon:1"),
    "busy": busy_row,
}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_encoding_is_byte_identical_to_the_earlier_codec(name: str) -> None:
    row = ROWS[name]()
    assert row.to_bytes() == old_encoding(row)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_rows_round_trip(name: str) -> None:
    row = ROWS[name]()
    raw = row.to_bytes()
    back = CustomerState.from_bytes(raw)
    assert back == row
    assert back.to_bytes() == raw


def test_empty_fields_are_left_out() -> None:
    assert CustomerState(key="k").to_bytes() == b'{"key":"k"}'


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(traits=st.dictionaries(st.text(), JSON, max_size=5))
def test_any_json_values_encode_like_the_earlier_codec(traits: dict[str, object]) -> None:
    row = CustomerState(
        key="k",
        profile=Profile(traits=traits),
        instances={
            "j:1": Instance(
                instance_id="j:1",
                journey_id="j",
                version="v",
                step_id="s",
                entered_at=T0,
                vars={"total": Decimal("49.90"), "traits": traits},
            )
        },
    )
    raw = row.to_bytes()
    assert raw == old_encoding(row)
    assert CustomerState.from_bytes(raw).to_bytes() == raw
