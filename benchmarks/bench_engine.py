"""The pure journey engine alone: events per second on one core.

25 active journeys (the 9 samples plus 16 generated promo journeys with conditions, waits and
sends), 2,000 customers with profiles, and a realistic mix: about 85% of events match no journey
(page views, app opens, searches...), about 10% enter or advance instances (carts, orders, views,
promo clicks) and about 5% are timer firings. The profile update (``apply_event``) is included,
because it runs in ``step``; parsing and the Faust/Kafka cost are not (see bench_pipeline).
Figures are medians of several runs on pre-built inputs; nothing here asserts a time.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from omnistream.domain.commands import Send
from omnistream.domain.events import Event, key_fields
from omnistream.domain.state import CustomerState
from omnistream.domain.timers import timer_fired_event
from omnistream.journey.engine import step
from omnistream.journey.loader import load_catalog
from omnistream.journey.model import Catalog

__all__ = ["run"]

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PROMO = """\
id: promo_{i}
name: Promo {i}
trigger:
  event: promo_{i}_clicked
  when: "event.properties.value > 10 and 'vip' not in profile.traits.tags"
entry: {{reentry: cooldown, cooldown: 1d, control_percent: 5}}
exit_on: [cart_cleared]
goal: {{event: order_placed}}
steps:
  - {{id: wait, type: wait_for, event: order_placed, timeout: 2h, on_timeout: nudge}}
  - id: nudge
    type: send
    channels: [best, mobile_push, email]
    content:
      mobile_push:
        body: "{{{{ profile.traits.first_name | default: 'Hi' }}}}, promo {i} ends soon"
      email: {{subject: "Promo {i}", body: "Hi {{{{ profile.traits.first_name }}}}"}}
"""
QUIET = ["page_viewed", "app_opened", "search_performed", "wishlist_viewed", "store_visited"]
ITEMS = [{"product_id": "sneakers-42", "quantity": 1, "price": 99, "name": "Air Max"}]


def _catalog(workdir: Path) -> Catalog:
    for path in (REPO / "journeys").glob("*.yaml"):
        (workdir / path.name).write_text(path.read_text())
    for i in range(16):
        (workdir / f"promo_{i}.yaml").write_text(PROMO.format(i=i))
    return load_catalog(workdir)


def _event(n: int, kind: str, key: str, at: datetime, **props: Any) -> Event:
    return Event(
        event_id=f"b{n}",
        type=kind,
        source="app",
        timestamp=at,
        properties=props,
        **key_fields(key),
    )


def _customers(catalog: Catalog, count: int) -> dict[str, CustomerState]:
    rows = {}
    for c in range(count):
        key = f"c-{c}"
        traits = {"first_name": f"N{c}", "email": f"n{c}@example.com", "timezone": "Europe/Kyiv"}
        signup = _event(-c - 1, "signed_up", key, T0 - timedelta(days=30), traits=traits)
        state, _ = step(catalog, CustomerState(key=key), signup, signup.timestamp)
        rows[key] = state
    return rows


def _inputs(count: int, customers: int, seed: int = 7) -> list[tuple[str, str, dict[str, Any]]]:
    """(customer key, kind, properties); kind ``timer`` fires the customer's next timer."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible load mix, not security
    plan: list[tuple[str, str, dict[str, Any]]] = []
    for _ in range(count):
        key = f"c-{rng.randrange(customers)}"
        roll = rng.random()
        if roll < 0.85:
            plan.append((key, rng.choice(QUIET), {"page": "/p"}))
        elif roll < 0.90:
            plan.append((key, f"promo_{rng.randrange(16)}_clicked", {"value": 20}))
        elif roll < 0.93:
            plan.append((key, "cart_updated", {"items": ITEMS}))
        elif roll < 0.95:
            plan.append((key, "order_placed", {"order_id": f"o{rng.random()}", "total": 99}))
        else:
            plan.append((key, "timer", {}))
    return plan


def _once(catalog: Catalog, rows: dict[str, CustomerState], plan: list[Any]) -> tuple[float, int]:
    table = dict(rows)
    sends = 0
    now = T0
    started = time.perf_counter()
    for n, (key, kind, props) in enumerate(plan):
        state = table[key]
        now += timedelta(seconds=2)
        if kind == "timer":
            if not state.timers:
                continue
            timer = min(state.timers.values(), key=lambda t: t.due)
            event = timer_fired_event(key, timer.timer_id, timer.due)
        else:
            event = _event(n, kind, key, now, **props)
        table[key], commands = step(catalog, state, event, event.timestamp)
        sends += sum(1 for c in commands if isinstance(c, Send))
    return time.perf_counter() - started, sends


def run(quick: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        catalog = _catalog(Path(tmp))
    active = sum(1 for j in catalog.journeys.values() if j.status == "active")
    rows = _customers(catalog, 500 if quick else 2000)
    count = 20_000 if quick else 100_000
    plan = _inputs(count, len(rows))
    quiet_plan = [(k, kind, p) for k, kind, p in plan if kind in QUIET]
    repeats = 3 if quick else 5
    mixed = [_once(catalog, rows, plan) for _ in range(repeats)]
    quiet = [_once(catalog, rows, quiet_plan) for _ in range(repeats)]
    return {
        "engine_events_per_s": count / statistics.median(t for t, _ in mixed),
        "engine_nonmatching_events_per_s": len(quiet_plan) / statistics.median(t for t, _ in quiet),
        "engine_sends_per_run": float(mixed[0][1]),
        "engine_active_journeys": float(active),
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:<36} {value:>12,.0f}")
