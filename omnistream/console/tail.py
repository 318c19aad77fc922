"""Bounded reads of a topic's newest records, for the DLQ page and the customer timeline.

A short-lived consumer without a group (no offsets committed, no rebalance of the worker's own
group) seeks each partition to ``end - last`` and reads forward until two fetches in a row bring
nothing or ``timeout_s`` passes, keeping at most ``last`` records per partition. It does not
trust the reported end offsets to stop (Tansu, the dev broker, under-reports them).
Cost: one connection and a few fetches per page view; nothing is kept.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition

from omnistream.clock import monotonic
from omnistream.config import Settings
from omnistream.ops.kafka_admin import bootstrap_servers
from omnistream.ops.kafka_security import KafkaSecurity

__all__ = ["DEFAULT_TIMEOUT_S", "tail"]

DEFAULT_TIMEOUT_S: Final = 4.0
_FETCH_MS: Final = 300
_IDLE_FETCHES: Final = 2
"""Empty fetches in a row that mean "caught up" (the first fetch after a seek may be empty)."""


async def tail(
    settings: Settings,
    security: KafkaSecurity,
    topic: str,
    last: int,
    partitions: Sequence[int] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[Any]:
    """Up to ``last`` newest records of each of ``partitions`` (all when ``None``), oldest first
    within a partition. An unknown topic reads as empty."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings.broker),
        group_id=None,
        enable_auto_commit=False,
        **security.aiokafka_kwargs(),
    )
    await consumer.start()
    try:
        await consumer.topics()  # fills the metadata cache
        known = consumer.partitions_for_topic(topic) or set()
        chosen = sorted(known if partitions is None else set(partitions) & known)
        if not chosen:
            return []
        tps = [TopicPartition(topic, p) for p in chosen]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(0, ends[tp] - last))
        return await _read(consumer, tps, last, timeout_s)
    finally:
        await consumer.stop()


async def _read(consumer: Any, tps: list[Any], last: int, timeout_s: float) -> list[Any]:
    kept: dict[Any, deque[Any]] = {tp: deque(maxlen=last) for tp in tps}
    deadline = monotonic() + timeout_s
    idle = 0
    while monotonic() < deadline:
        try:
            batch = await asyncio.wait_for(
                consumer.getmany(timeout_ms=_FETCH_MS), max(0.05, deadline - monotonic())
            )
        except TimeoutError:
            break
        idle = 0 if any(batch.values()) else idle + 1
        if idle >= _IDLE_FETCHES:
            break
        for tp, records in batch.items():
            kept[tp].extend(records)
    return [record for tp in tps for record in kept[tp]]
