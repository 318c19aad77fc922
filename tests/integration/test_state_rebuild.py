"""The changelog is the source of truth: wipe a worker's RocksDB directory and the customer
state comes back from Kafka, not from replaying the source events.

This is the backup/restore story of docs/operations.md, proven end to end: a worker with the
``rocksdb://`` store learns a customer's name and address, stops, loses its data directory, and
a new worker with the same app id renders that name into a send triggered by a later event.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from .conftest import Stack, Worker, wait_until
from .test_walking_skeleton import counter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

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
        body: "Hi {{ profile.traits.first_name }}"
"""
BODY_WITH_NAME = "Hi Ada"


def envelope(stack: Stack, event_id: str, type_: str, **props: Any) -> bytes:
    """Ids unique to this test: send ids derive from them, and Redis (dedup claims) is shared
    by every test of the session."""
    return orjson.dumps(
        {
            "event_id": f"{stack.prefix}{event_id}",
            "type": type_,
            "source": "site",
            "customer_id": f"{stack.prefix}c-1",
            "timestamp": "2026-11-24T10:00:00Z",
            "properties": props,
        }
    )


async def produce(stack: Stack, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker_url.removeprefix("kafka://"))
    await producer.start()
    try:
        await producer.send_and_wait(stack.topic("events.site"), value, key=b"backend")
    finally:
        await producer.stop()


def rocksdb_files(data_dir: Path) -> list[Path]:
    """RocksDB keeps a ``CURRENT`` file in every database directory."""
    return sorted(data_dir.rglob("CURRENT")) if data_dir.exists() else []


def body_length(send: dict[str, object]) -> int:
    """The log provider writes the body's size (bodies are personal data), older ones the body."""
    if "body_chars" in send:
        return int(str(send["body_chars"]))
    return len(str(send["body"]))


def diagnose(worker: Worker) -> str:
    text = worker.metrics()
    lines = [
        line
        for line in text.splitlines()
        if line.startswith(
            (
                "omnistream_customer_inputs",
                "omnistream_sends_total",
                "omnistream_send_duplicates",
                "omnistream_events_",
            )
        )
    ]
    return "\n".join([*lines, worker.log_tail()])


def event_inputs(worker: Worker) -> float:
    return counter(worker.metrics(), "omnistream_customer_inputs_total", kind="event")


def test_wiped_rocksdb_rebuilds_from_changelog(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    (stack.journeys_dir / "order_confirmation.yaml").write_text(JOURNEY)
    data_dir = stack.tmp / "w0"  # the start_worker fixture's data dir for worker "w0"
    first = start_worker("w0", OMNISTREAM_STORE="rocksdb://")
    traits = {"first_name": "Ada", "email": "a@x.test"}
    signed_up = envelope(stack, "e1", "signed_up", traits=traits)
    asyncio.run(produce(stack, signed_up))
    wait_until(lambda: event_inputs(first) >= 1, 30, f"signed_up processed\n{first.log_tail()}")
    assert rocksdb_files(data_dir), f"no RocksDB database under {data_dir}"
    assert stack.sends() == []  # signing up triggers nothing: the name lives only in state

    first.stop()  # graceful: commits the source offsets and flushes the changelog
    shutil.rmtree(data_dir)
    assert rocksdb_files(data_dir) == []

    second = start_worker("w0", OMNISTREAM_STORE="rocksdb://")
    asyncio.run(produce(stack, envelope(stack, "e2", "order_placed", order_id="o-1", total=10)))
    try:
        wait_until(lambda: len(stack.sends()) >= 1, 30, "a send")
    except AssertionError as exc:  # say what the worker saw, at the time of the failure
        raise AssertionError(f"{exc}\n{diagnose(second)}") from None

    sends = stack.sends()
    assert len({s["send_id"] for s in sends}) == 1, sends  # one message (duplicate lines aside)
    send = sends[0]
    # The address and the name came only with signed_up: the send exists and greets Ada, so the
    # customer row was restored...
    assert send["channel"] == "email"
    assert body_length(send) == len(BODY_WITH_NAME)
    # ...from the changelog, not by re-reading signed_up: this worker saw exactly one event.
    assert event_inputs(second) == 1
    assert rocksdb_files(data_dir), "the new worker did not rebuild its RocksDB directory"


async def produce_many(stack: Stack, values: list[tuple[bytes, bytes]]) -> None:
    """All at once, so the customer agent takes them in one batch and writes their rows
    together: the changelog then holds record batches of several rows."""
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.broker_url.removeprefix("kafka://"), linger_ms=200
    )
    await producer.start()
    try:
        futures = [
            await producer.send(stack.topic("events.site"), value, key=key) for key, value in values
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def restored_name(worker: Worker, customer: str) -> str | None:
    status, body = worker.fetch(f"/customers/{customer}")
    if status != 200:
        return None
    traits = orjson.loads(body)["profile"].get("traits", {})
    name = traits.get("first_name")
    return str(name) if name is not None else None


def test_every_row_of_the_last_changelog_batch_comes_back(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    """A broker may report a partition's end offset short of its last record: Tansu answers
    ListOffsets(latest) with the last record batch's *base* offset + 1. Faust's recovery stops
    at that offset, so the rows after the first of the last batch did not come back (seen as
    29 of 30 timers rebuilt after a kill -9, and a soak customer who lost an order)."""
    customers = [f"{stack.prefix}c-{i}" for i in range(40)]
    first = start_worker("w0")
    values = [
        (
            c.encode(),
            orjson.dumps(
                {
                    "event_id": f"{c}-signup",
                    "type": "signed_up",
                    "source": "site",
                    "customer_id": c,
                    "timestamp": "2026-11-24T10:00:00Z",
                    "properties": {"traits": {"first_name": f"n{i}"}},
                }
            ),
        )
        for i, c in enumerate(customers)
    ]
    asyncio.run(produce_many(stack, values))
    wait_until(lambda: event_inputs(first) >= len(customers), 30, lambda: diagnose(first))
    assert all(restored_name(first, c) == f"n{i}" for i, c in enumerate(customers))
    first.stop()  # graceful: offsets committed, so the next worker re-reads no event

    second = start_worker("w1")  # memory store, new data dir: every row from the changelog
    missing = [c for i, c in enumerate(customers) if restored_name(second, c) != f"n{i}"]
    assert missing == [], f"{len(missing)} of {len(customers)} rows not restored: {missing}"
    assert event_inputs(second) == 0  # restored from the changelog, not by re-reading events
