"""The DLQ's edges on the real broker (issue 15 item 3, issue 22): ``omni.dlq`` exists as soon as
a worker is ready, and a ~1 MB invalid record (let in by the broker's default limit) reaches it
truncated with its size and hash, while the worker stays up and ingests the next event.

Before: the DLQ topic appeared only with the first rejected record, and the DLQ producer raised
``MessageSizeTooLargeError`` for the near-1 MB copy: the customer agent crashed, the record was
lost.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from omnistream.config import Settings
from omnistream.ops.topics import desired_topics
from omnistream.runtime.dlq import DeadLetter

from .conftest import Stack, Worker, wait_until
from .test_walking_skeleton import counter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

BIG = 999_800


def servers(stack: Stack) -> str:
    return stack.broker_url.removeprefix("kafka://")


async def topic_names(stack: Stack) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers(stack))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def produce(stack: Stack, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers(stack), max_request_size=2 * 2**20)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(stack.topic("events.site"), value, key=b"backend-1")
    finally:
        await producer.stop()


async def read_dlq(stack: Stack, timeout: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        stack.topic("dlq"),
        bootstrap_servers=servers(stack),
        auto_offset_reset="earliest",
        group_id=None,
        max_partition_fetch_bytes=2 * 2**20,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while not records:
                for msgs in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(msgs)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return records


def good_event() -> bytes:
    return orjson.dumps(
        {"event_id": "after-big", "type": "page_viewed", "source": "site",
         "customer_id": "c-1", "timestamp": "2026-11-24T10:00:00Z"}
    )  # fmt: skip


def test_dlq_exists_at_ready_and_a_near_1mb_record_reaches_it_truncated(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    dlq_topic = stack.topic("dlq")
    settings = Settings(topic_prefix=stack.prefix, app_id=stack.app_id)
    assert dlq_topic in {spec.name for spec in desired_topics(settings)}  # `topics plan` has it
    assert dlq_topic not in asyncio.run(topic_names(stack))

    worker = start_worker()
    assert dlq_topic in asyncio.run(topic_names(stack)), "no DLQ topic right after /ready"

    value = b"{" + b"x" * (BIG - 1)  # invalid JSON and far over the event size limit
    asyncio.run(produce(stack, [value, good_event()]))
    wait_until(
        lambda: counter(worker.metrics(), "omnistream_events_ingested_total", source="site") >= 1,
        timeout=60,
        what=lambda: f"the event after the big record ingested\n{worker.log_tail()}",
    )
    assert worker.proc.poll() is None, worker.log_tail()

    (record,) = asyncio.run(read_dlq(stack, timeout=20))
    headers = dict(record.headers)
    assert headers["omnistream.truncated"] == b"1"
    assert headers["omnistream.original_size"] == str(BIG).encode()
    assert headers["omnistream.sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert value.startswith(record.value) and len(record.value) > BIG - 10_000
    letter = DeadLetter.from_headers(list(record.headers))
    assert (letter.topic, letter.reason) == (stack.topic("events.site"), "too_large")
    text = worker.metrics()
    assert counter(text, "omnistream_dlq_truncated_total") == 1
    assert counter(text, "omnistream_dlq_send_failures_total") == 0
