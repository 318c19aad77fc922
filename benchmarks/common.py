"""Shared benchmark plumbing: embedded servers, fast bulk producing, medians."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

__all__ = ["bootstrap", "create_topic", "median", "produce_bulk", "timed"]


def bootstrap(broker_url: str) -> str:
    return broker_url.removeprefix("kafka://")


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


async def create_topic(broker_url: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(broker_url))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def produce_bulk(
    broker_url: str, topic: str, values: Iterable[tuple[bytes | None, bytes]]
) -> int:
    """Produce as fast as the client allows (batched, not acked one by one)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap(broker_url), linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    count = 0
    try:
        pending = []
        for key, value in values:
            pending.append(await producer.send(topic, value, key=key))
            count += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return count
