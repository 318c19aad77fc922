"""End to end on the real broker and Redis: a backend produces events with plain aiokafka, the
worker ingests them, a journey sends one message through the `log` provider, and every invalid
record lands in the DLQ with its reason and its original bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from omnistream.runtime.dlq import DeadLetter

from .conftest import Stack, Worker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

JOURNEY = """
id: order_confirmation
name: Order confirmation
trigger: {event: order_placed}
steps:
  - id: confirm
    type: send
    channels: [email]
    category: transactional
    content:
      email:
        subject: "Order {{ event.properties.order_id }}"
        body: "Thanks {{ profile.traits.first_name }}, order {{ event.properties.order_id }}."
"""


def envelope(event_id: str, type_: str, customer: str, **props: Any) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "type": type_,
            "source": "site",
            "customer_id": customer,
            "timestamp": "2026-11-24T10:00:00Z",
            "properties": props,
        }
    )


GOOD = [
    envelope("e1", "signed_up", "c-1", traits={"first_name": "Ada", "email": "ada@example.com"}),
    envelope("e2", "order_placed", "c-1", order_id="o-1", total=10),
    envelope("e3", "order_placed", "c-2", order_id="o-2", total=20),  # c-2 has no email
]
BAD = {
    b"{this is not json": "malformed_json",
    orjson.dumps({"event_id": "b1", "type": "x", "source": "site",
                  "timestamp": "2026-11-24T10:00:00Z"}): "invalid",  # no identity
    b"[]": "not_an_object",
    envelope("b2", "huge", "c-3", blob="x" * 70_000): "too_large",
    # What only omnistream may say, forged by a producer (docs/security.md):
    orjson.dumps({"event_id": "f1", "type": "message_opened", "source": "omnistream",
                  "customer_id": "c-1", "timestamp": "2026-11-24T10:00:00Z",
                  "properties": {"channel": "email"}}): "reserved",
    envelope("f2", "message_unsubscribed", "c-1", channel="email"): "reserved",
    envelope("f3", "timer_fired", "c-1", timer_id="t-1"): "reserved",
    orjson.dumps({"event_id": "f4", "type": "order_placed", "source": "site", "customer_id": "c-1",
                  "timestamp": "9999-12-31T00:00:00Z"}): "future_timestamp",
}  # fmt: skip


async def produce(stack: Stack, records: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker_url.removeprefix("kafka://"))
    await producer.start()
    try:
        for value in records:
            # same key for everything: arrival order is the order we produced
            await producer.send_and_wait(stack.topic("events.site"), value, key=b"backend-1")
    finally:
        await producer.stop()


async def read_dlq(stack: Stack, count: int, timeout: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        stack.topic("dlq"),
        bootstrap_servers=stack.broker_url.removeprefix("kafka://"),
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for msgs in batch.values():
                    records.extend(msgs)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return records


def counter(metrics_text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_events_in_one_send_out_and_dlq(stack: Stack, start_worker: Callable[..., Worker]) -> None:
    (stack.journeys_dir / "order_confirmation.yaml").write_text(JOURNEY)
    worker = start_worker()
    asyncio.run(produce(stack, [*GOOD[:1], *BAD, *GOOD[1:]]))

    wait_until(
        lambda: counter(worker.metrics(), "omnistream_sends_total", channel="email") >= 2,
        timeout=60,
        what=f"two email outcomes\n{worker.log_tail()}",
    )
    sends = stack.sends()
    assert len(sends) == 1, sends
    (delivered,) = sends
    assert delivered["channel"] == "email"
    assert delivered["to"] == "ada@example.com"
    assert delivered["body"] == "Thanks Ada, order o-1."
    assert delivered["subject"] == "Order o-1"

    text = worker.metrics()
    assert counter(text, "omnistream_events_ingested_total", source="site") == len(GOOD)
    assert counter(text, "omnistream_journey_entries_total", journey="order_confirmation") == 2
    assert counter(text, "omnistream_sends_total", channel="email", outcome="sent") == 1
    # c-2 has no email address: the only channel of the chain cannot deliver, nothing is sent
    assert counter(text, "omnistream_sends_total", channel="email") == 2
    for reason in set(BAD.values()):
        expected = sum(1 for r in BAD.values() if r == reason)
        assert counter(text, "omnistream_events_rejected_total", reason=reason) == expected
    assert counter(text, "omnistream_event_to_send_seconds_count", channel="email") == 1

    dlq = asyncio.run(read_dlq(stack, len(BAD), timeout=20))
    assert len(dlq) == len(BAD)
    seen = {}
    for record in dlq:
        letter = DeadLetter.from_headers(list(record.headers))
        assert letter.topic == stack.topic("events.site")
        assert letter.detail
        seen[record.value] = letter.reason
    assert seen == BAD  # original bytes, byte for byte, with the right reason each
