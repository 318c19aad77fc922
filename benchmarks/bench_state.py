"""State size and timer memory, measured on the real data structures.

- bytes per customer: a customer row (as written to the table and its changelog) for a typical
  profile with two live journeys, built by running the real engine on the sample journeys;
- memory per 100k pending timers in a worker's timer index (tracemalloc, Python heap only).
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from omnistream.domain.events import parse_event
from omnistream.domain.identity import claims_for, route_key
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.journey.loader import load_catalog
from omnistream.runtime.timers import TimerIndex

__all__ = ["run", "typical_row"]

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _event(n: int, type_: str, **props: Any) -> bytes:
    return orjson.dumps({
        "event_id": f"e{n}", "type": type_, "source": "app", "customer_id": "c-100042",
        "anonymous_id": "device-7f3a9c", "timestamp": (T0 + timedelta(minutes=n)).isoformat(),
        "properties": props,
    })  # fmt: skip


def typical_row() -> CustomerState:
    """A known customer with traits, consents, a cart, an order and two journeys in flight."""
    catalog = load_catalog(REPO / "journeys")
    state = CustomerState(key="c-100042")
    traits = {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
        "phone": "+4915112345678", "timezone": "Europe/Berlin", "locale": "de-DE",
        "birthday": "1990-12-10",
    }  # fmt: skip
    items = [
        {"sku": "sneakers-42", "qty": 1, "price": 89.0},
        {"sku": "socks", "qty": 2, "price": 5},
    ]
    inputs = [
        _event(1, "signed_up", traits=traits),
        _event(2, "product_viewed", sku="sneakers-42"),
        _event(3, "product_viewed", sku="socks"),
        _event(4, "order_placed", order_id="o-1", total=49.0, items=items[:1]),
        _event(5, "cart_updated", items=items),
    ]
    for n, raw in enumerate(inputs, start=1):
        state, _ = step(catalog, state, parse_event(raw), T0 + timedelta(minutes=n))
    return state


def timer_memory(count: int) -> float:
    """Bytes of Python heap per pending timer in the worker's index."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = TimerIndex()
    for n in range(count):
        index.schedule(f"customer-{n:08d}", f"j:{n}:wait:1", T0 + timedelta(seconds=n % 86400))
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(index) == count
    return (after - before) / count


def identity_cost_us(number: int = 20_000) -> dict[str, float]:
    """µs per event for what identity adds to the hot path: the routing key at ingest and the
    claims check after the engine step, for an anonymous and for a known customer's event."""
    row = typical_row()
    anonymous = parse_event(orjson.dumps({
        "event_id": "a1", "type": "page_viewed", "source": "site", "anonymous_id": "cookie-9",
        "timestamp": T0.isoformat(), "properties": {},
    }))  # fmt: skip
    known = parse_event(_event(99, "page_viewed"))
    anon_row = CustomerState(key="anon:cookie-9")
    figures = {}
    for name, event, state in (("anonymous", anonymous, anon_row), ("known", known, row)):
        started = time.perf_counter()
        for _ in range(number):
            route_key(event)
            claims_for(state, event)
        figures[f"identity_us_per_event_{name}"] = (time.perf_counter() - started) / number * 1e6
    return figures


def run(quick: bool = False) -> dict[str, Any]:
    row = typical_row()
    per_timer = timer_memory(100_000)
    return {
        **identity_cost_us(2_000 if quick else 20_000),
        "row_bytes_typical": len(row.to_bytes()),
        "row_live_journeys": len(row.instances),
        "row_pending_timers": len(row.timers),
        "timer_index_bytes_per_timer": per_timer,
        "timer_index_mib_per_100k": per_timer * 100_000 / 2**20,
    }


if __name__ == "__main__":
    print(orjson.dumps(run(), option=orjson.OPT_INDENT_2).decode())
