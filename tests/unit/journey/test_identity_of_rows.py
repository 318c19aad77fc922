"""The runtime relies on this: the engine returns the very same row object only for a repeated
input (it counts duplicates and skips the row write by it); any new input yields a new row."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from omnistream.domain.events import Event
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.journey.loader import load_catalog

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)


def test_same_object_back_only_for_a_repeated_event_id() -> None:
    catalog = load_catalog(REPO / "journeys")
    event = Event(event_id="e1", type="page_viewed", source="site", customer_id="c1", timestamp=NOW)
    fresh = CustomerState(key="c1")
    once, _ = step(catalog, fresh, event, NOW)
    assert once is not fresh  # even an event that matches no journey is a new row
    again, commands = step(catalog, once, event, NOW)
    assert again is once
    assert commands == []
