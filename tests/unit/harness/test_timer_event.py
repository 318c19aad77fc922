"""One timer event constructor: the worker's timer loop and the simulator feed the same input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from omnistream.domain.events import Event
from omnistream.domain.state import CustomerState
from omnistream.journey import simulate as simulate_module
from omnistream.journey.loader import load_catalog
from omnistream.runtime.timers import timer_fired_event

PROFILE = {
    "addresses": {"mobile_push": "tok-1"},
    "consents": {"mobile_push": {"marketing": True}},
}
JOURNEYS = Path(__file__).resolve().parents[3] / "journeys"


def test_the_simulator_fires_timers_as_the_worker_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every timer_fired the simulator feeds equals the worker's event for that timer."""
    fed: list[Event] = []
    real_step = simulate_module.step

    def spy(catalog: Any, state: CustomerState, event: Event, now: datetime) -> Any:
        fed.append(event)
        return real_step(catalog, state, event, now)

    monkeypatch.setattr(simulate_module, "step", spy)
    catalog = load_catalog(JOURNEYS)
    t0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    events = [
        {
            "type": "cart_updated",
            "timestamp": t0.isoformat(),
            "properties": {"items": [{"product_id": "p-1", "quantity": 1, "price": 9}]},
        },
    ]
    simulate_module.simulate(catalog, events, profile=PROFILE)
    fired = [e for e in fed if e.type == "timer_fired"]
    assert fired, "the scenario must fire at least one timer"
    for event in fired:
        timer_id = event.properties["timer_id"]
        assert event == timer_fired_event(event.customer_key, timer_id, event.timestamp)
