"""A real worker holds a due wait until the customer's source partitions are read up to it.

The cart is read at once and its 20 s wait is already over (the cart happened 30 s ago: waits
run from an input's time). The order the customer placed 5 s after the cart sits on the CRM
topic behind a backlog of other customers' events in the same partition. Without the gate the
cart's timer fired within a tick of the cart and the buyer got the reminder (measured: the
test fails with the gate removed); with it, the timer waits until the CRM partition is read
past the due time, the order is seen first and no reminder goes out. The backlog is larger than
Faust's stream buffer: a smaller one is all queued ahead of the cart, which is then handled
after the order anyway. A second customer, who never ordered, gets the reminder once the backlog
is read: the gate holds timers, it does not lose them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from omnistream.runtime.partitions import partition_of

from .conftest import Stack, Worker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PARTITIONS = 4  # the stack's OMNISTREAM_PARTITIONS
BACKLOG = 20_000
REMINDER = """
id: cart_reminder
name: Cart reminder unless the customer orders within 20 s
trigger: {event: cart_updated}
entry: {reentry: never}
steps:
  - id: wait_for_order
    type: wait_for
    event: order_placed
    timeout: 20s
    on_event: bought
    on_timeout: remind
  - id: remind
    type: send
    channels: [email]
    category: transactional
    content:
      email: {subject: "Your cart", body: "Still there?"}
  - id: bought
    type: exit
    reason: purchased
"""


def envelope(customer: str, n: int, type_: str, at: datetime, **props: Any) -> bytes:
    return orjson.dumps({
        "event_id": f"{customer}-{n}", "type": type_, "source": "crm", "customer_id": customer,
        "timestamp": at.isoformat(), "properties": props,
    })  # fmt: skip


def same_partition_keys(partition: int, count: int) -> list[str]:
    keys = (f"filler-{n}" for n in range(10 * count))
    return [k for k in keys if partition_of(k.encode(), PARTITIONS) == partition][:count]


async def produce(stack: Stack, buyer: str, browser: str) -> None:
    cart_at = datetime.now(UTC) - timedelta(seconds=30)
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.broker_url.removeprefix("kafka://"), linger_ms=20
    )
    await producer.start()
    try:

        async def send(topic: str, customer: str, value: bytes) -> None:
            await producer.send(stack.topic(topic), value, key=customer.encode())

        crm_partition = partition_of(buyer.encode(), PARTITIONS)
        for filler in same_partition_keys(crm_partition, BACKLOG):
            await send("events.crm", filler, envelope(filler, 1, "product_viewed", cart_at))
        order = envelope(buyer, 3, "order_placed", cart_at + timedelta(seconds=5), order_id="o1")
        await send("events.crm", buyer, order)
        await producer.flush()
        for customer in (buyer, browser):
            traits = {"email": f"{customer}@example.com"}
            signed = envelope(
                customer, 1, "signed_up", cart_at - timedelta(seconds=1), traits=traits
            )
            await send("events.site", customer, signed)
            await send("events.site", customer, envelope(customer, 2, "cart_updated", cart_at))
        await producer.flush()
    finally:
        await producer.stop()


def test_a_due_wait_waits_for_the_order_behind_a_backlog(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    (stack.journeys_dir / "cart_reminder.yaml").write_text(REMINDER)
    buyer, browser = "gate-buyer", "gate-browser"
    worker = start_worker()
    asyncio.run(produce(stack, buyer, browser))

    def reminded() -> set[str]:
        return {str(s["customer_key"]) for s in stack.sends() if s.get("step_id") == "remind"}

    def journeys_of(customer: str) -> list[Any] | None:
        status, body = worker.fetch(f"/customers/{customer}")
        return list(orjson.loads(body)["journeys"]) if status == 200 else None

    wait_until(lambda: browser in reminded(), 120, lambda: worker.log_tail())
    wait_until(lambda: journeys_of(buyer) == [], 120, "the buyer's order to end the journey")
    assert buyer not in reminded(), "the buyer got the reminder: the timer did not wait"
