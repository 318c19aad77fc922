"""The harness hands records to the worker's own agent functions, not to a copy of their steps.

Each test replaces one worker function with a counting wrapper (or feeds a record the worker
refuses) and checks that the harness went through it: ingest for a producer's event, the
customer agent for every input and timer firing, the timer loop's ``fire_due``,
``senders.on_send`` for every send, the
worker's dead-letter path for bad records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from omnistream.domain.events import Event
from omnistream.domain.profile import Profile
from omnistream.domain.state import CustomerState
from omnistream.harness.clock import ManualClock
from omnistream.harness.delivery import Delivery
from omnistream.harness.run import CUSTOMER_EVENTS, Harness
from omnistream.journey.loader import load_catalog
from omnistream.journey.model import Catalog
from omnistream.runtime import customers, ingest, senders
from omnistream.runtime import timers as timer_loop

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
JOURNEY = """
id: cart_nudge
name: Cart nudge
trigger: {event: cart_updated}
steps:
  - {id: hold, type: wait, duration: 1h, next: nudge}
  - id: nudge
    type: send
    channels: [email]
    content: {email: {subject: "Your cart", body: "Still there."}}
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "cart_nudge.yaml").write_text(JOURNEY)
    return load_catalog(tmp_path)


def event(event_id: str, type_: str, at: datetime, **fields: Any) -> Event:
    return Event(
        event_id=event_id,
        type=type_,
        source="site",
        timestamp=at,
        customer_id="c-1",
        **fields,
    )


def count_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[tuple[Any, ...]]:
    """Wrap ``module.name`` (an async function) so every call is recorded, then runs it."""
    calls: list[tuple[Any, ...]] = []
    original: Callable[..., Any] = getattr(module, name)

    async def wrapper(*args: Any) -> Any:
        calls.append(args)
        return await original(*args)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_a_producers_event_goes_through_ingest_and_the_customer_agent(
    monkeypatch: pytest.MonkeyPatch, catalog: Catalog
) -> None:
    sources = count_calls(monkeypatch, ingest, "on_source_record")
    engine_inputs = count_calls(monkeypatch, customers, "on_event")
    harness = Harness(catalog, ManualClock(T0))
    harness.publish(event("e1", "cart_updated", T0, properties={"items": 1}))
    harness.run_until(T0 + timedelta(minutes=1))
    assert len(sources) == 1
    assert sources[0][1].topic == "omni.events.site"
    assert [call[3].event_id for call in engine_inputs] == ["e1"]
    row = harness.row("c-1")
    assert row is not None and "cart_nudge" in {i.journey_id for i in row.instances.values()}
    assert harness.rejected == []


def test_the_timer_firing_and_the_send_run_the_worker_functions(
    monkeypatch: pytest.MonkeyPatch, catalog: Catalog
) -> None:
    engine_inputs = count_calls(monkeypatch, customers, "on_event")
    sent = count_calls(monkeypatch, senders, "on_send")
    fired = count_calls(monkeypatch, timer_loop, "fire_due")
    harness = Harness(catalog, ManualClock(T0), delivery=Delivery())
    profile = {
        "addresses": {"email": "a@example.com"},
        "consents": {"email": {"marketing": True}},
    }
    harness.seed(CustomerState(key="c-1", profile=Profile.model_validate(profile)))
    harness.publish(event("e1", "cart_updated", T0, properties={"items": 1}))
    harness.run_until(T0 + timedelta(hours=2))
    types = [call[3].type for call in engine_inputs]
    assert types[0] == "cart_updated"
    assert "timer_fired" in types  # the wait ended through the customer agent
    assert [call[1] for call in fired] == [T0 + timedelta(hours=1)]  # the worker's timer loop
    assert [call[1] for call in sent] == ["email"]
    assert [s.step_id for s in harness.sends()] == ["nudge"]
    # the dispatcher's answer came back to the customer's partition as an input, too
    assert any(t.startswith("message_") for t in types[types.index("timer_fired") :])


def test_a_record_the_worker_refuses_is_dead_lettered_with_the_workers_reason(
    catalog: Catalog,
) -> None:
    harness = Harness(catalog, ManualClock(T0))
    harness.broker.send(CUSTOMER_EVENTS, b"c-1", b'{"event_id": ')
    harness.broker.send(CUSTOMER_EVENTS, None, b"{}")
    harness.run_until(T0)
    assert [r.reason for r in harness.rejected] == ["malformed_json", "no_key"]
    assert harness.row("c-1") is None
