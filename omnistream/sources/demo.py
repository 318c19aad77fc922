"""Demo traffic: simulated customers browsing the site, using the app, carting, ordering, visiting
a store, produced to the source topics with a plain aiokafka producer, as a backend team would:
keyed by customer (``source_key``).

About 1% of records are deliberately broken (bad JSON, missing fields) so the DLQ is visible.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from omnistream.clock import monotonic, utcnow
from omnistream.config import Settings
from omnistream.domain.events import EventError, parse_event
from omnistream.domain.identity import route_key

__all__ = ["DemoCustomer", "demo_events", "run_demo_traffic", "source_key"]

PRODUCTS = ["sneakers-42", "dog-food-10kg", "bp-meds-30d", "novel-hardcover", "sushi-set"]


class DemoCustomer:
    """One simulated shopper with a little state, so the event stream tells a coherent story."""

    def __init__(self, number: int, rng: random.Random) -> None:
        self.number = number
        self.rng = rng
        self.anonymous_id = f"demo-anon-{number}"
        self.customer_id: str | None = None
        self.cart: list[str] = []
        self.seq = 0

    def _envelope(self, type_: str, source: str, now: datetime, **props: Any) -> dict[str, Any]:
        self.seq += 1
        env: dict[str, Any] = {
            "event_id": f"demo-{self.number}-{self.seq}",
            "type": type_,
            "source": source,
            "anonymous_id": self.anonymous_id,
            "timestamp": now.isoformat(),
            "properties": props,
        }
        if self.customer_id:
            env["customer_id"] = self.customer_id
        return env

    def next_event(self, now: datetime) -> tuple[str, dict[str, Any]]:
        """(source, envelope) of this customer's next action."""
        rng = self.rng
        roll = rng.random()
        source = rng.choice(["site", "app"])
        if self.customer_id is None and roll < 0.15:
            self.customer_id = f"demo-cust-{self.number}"
            traits = {
                "email": f"shopper{self.number}@example.com",
                "phone": f"+1555{self.number:07d}",
                "first_name": f"Shopper{self.number}",
                "timezone": rng.choice(["Europe/Berlin", "America/New_York", "Asia/Tokyo"]),
            }
            return source, self._envelope("signed_up", source, now, traits=traits)
        if roll < 0.45:
            product = rng.choice(PRODUCTS)
            return source, self._envelope("product_viewed", source, now, product_id=product)
        if roll < 0.70:
            sku = rng.choice(PRODUCTS)
            self.cart.append(sku)
            items = [{"product_id": s, "quantity": 1, "price": 49.0} for s in self.cart]
            return source, self._envelope("cart_updated", source, now, items=items)
        if roll < 0.80 and self.cart and self.customer_id:
            order = {"order_id": f"o-{self.number}-{self.seq}", "total": 49.0 * len(self.cart)}
            self.cart = []
            return source, self._envelope("order_placed", source, now, **order)
        if roll < 0.85 and self.customer_id:
            return "store", self._envelope("store_visited", "store", now, store_id="berlin-1")
        return source, self._envelope(
            "app_opened" if source == "app" else "page_viewed", source, now
        )


def _broken(rng: random.Random) -> bytes:
    return rng.choice([b"{not json", b'{"type": "x"}', b"[]", orjson.dumps({"event_id": "x"})])


def demo_events(
    customers: int, seed: int, clock: Callable[[], datetime]
) -> Iterator[tuple[str, bytes]]:
    """Endless (source, raw bytes) stream of demo traffic, timestamped by ``clock``."""
    rng = random.Random(seed)  # noqa: S311 - simulation, not security
    people = [DemoCustomer(n, rng) for n in range(customers)]
    while True:
        now = clock()
        if rng.random() < 0.01:
            yield rng.choice(["site", "app"]), _broken(rng)
            continue
        source, env = rng.choice(people).next_event(now)
        yield source, orjson.dumps(env)


def source_key(raw: bytes) -> bytes | None:
    """The key a backend should give a source record: its customer's key (the ``customer_id``,
    or ``anon:<anonymous_id>`` before sign-in), so the worker handles it in place instead of
    forwarding it (``runtime/ingest.py``). ``None`` for a record that is not a valid event."""
    try:
        return route_key(parse_event(raw)).encode()
    except EventError:
        return None


async def run_demo_traffic(
    settings: Settings, rate: float, customers: int, seed: int, limit: int | None = None
) -> int:
    """Produce demo events at about ``rate`` per second until cancelled (or ``limit``)."""
    bootstrap = settings.broker.removeprefix("kafka://")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    sent = 0
    started = monotonic()
    try:
        for source, raw in demo_events(customers, seed, utcnow):
            await producer.send(settings.topic(f"events.{source}"), raw, key=source_key(raw))
            sent += 1
            if limit is not None and sent >= limit:
                break
            ahead = sent / rate - (monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()
    return sent
