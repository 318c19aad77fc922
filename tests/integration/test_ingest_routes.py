"""Both ingest routes on a real worker: source records already in their customer's partition are
handled in place, the others are forwarded through ``omni.customer-events``; either way every
customer gets exactly the send the journey promises."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from omnistream.runtime.partitions import partition_of
from omnistream.sources.demo import source_key

from .conftest import Stack, Worker, wait_until
from .test_metrics_exact import value
from .test_walking_skeleton import JOURNEY

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

PARTITIONS = 4  # the stack's OMNISTREAM_PARTITIONS
CUSTOMERS = 8  # per route


def events_of(customer: str) -> list[bytes]:
    def envelope(n: int, type_: str, **props: object) -> bytes:
        return orjson.dumps(
            {
                "event_id": f"{customer}-{n}",
                "type": type_,
                "source": "site",
                "customer_id": customer,
                "timestamp": "2026-11-24T10:00:00Z",
                "properties": props,
            }
        )

    traits = {"first_name": customer, "email": f"{customer}@example.com"}
    return [
        envelope(1, "signed_up", traits=traits),
        envelope(2, "order_placed", order_id=f"o-{customer}", total=10),
    ]


async def produce(stack: Stack) -> None:
    """``direct-*`` customers: keyed as the README asks, in their own partition. ``forwarded-*``:
    the same records one partition off (a backend with another key or partitioner)."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker_url.removeprefix("kafka://"))
    await producer.start()
    try:
        for n in range(CUSTOMERS):
            for route in ("direct", "forwarded"):
                for raw in events_of(f"{route}-{n}"):
                    key = source_key(raw)
                    assert key is not None
                    home = partition_of(key, PARTITIONS)
                    partition = home if route == "direct" else (home + 1) % PARTITIONS
                    await producer.send_and_wait(
                        stack.topic("events.site"), raw, key=key, partition=partition
                    )
    finally:
        await producer.stop()


def test_direct_and_forwarded_events_give_the_same_sends(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    (stack.journeys_dir / "order_confirmation.yaml").write_text(JOURNEY)
    worker = start_worker()
    asyncio.run(produce(stack))
    wait_until(lambda: len(stack.sends()) >= 2 * CUSTOMERS, 60, lambda: worker.log_tail())

    text = worker.metrics()
    routes = {
        route: value(text, "omnistream_ingest_routes_total", route=route)
        for route in ("direct", "forwarded")
    }
    assert routes == {"direct": 2 * CUSTOMERS, "forwarded": 2 * CUSTOMERS}
    assert value(text, "omnistream_customer_inputs_total", kind="event") == 4 * CUSTOMERS
    sends = sorted((str(s["to"]), str(s["subject"])) for s in stack.sends())
    expected = sorted(
        (f"{route}-{n}@example.com", f"Order o-{route}-{n}")
        for n in range(CUSTOMERS)
        for route in ("direct", "forwarded")
    )
    assert sends == expected
