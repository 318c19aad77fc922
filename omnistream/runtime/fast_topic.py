"""The worker's Faust topic class: publishing without three event-loop turns per record, and
the worker's own records straight through the producer.

Faust's ``Topic.publish_message`` (behind ``Topic.send`` and behind every table changelog
record) first awaits ``app.maybe_start_producer()``, which mode's ``@stampede`` wraps in three
``asyncio.sleep(0)``: three turns of the event loop per record, even when the producer runs.
``FastTopic._get_producer`` returns the running producer directly and asks Faust only before it
started (or in a transaction, which the worker does not use).

``Topic.send`` also wraps each record in a pending and a future message, calls the sensors and
resolves the record's future through a chain of callbacks. For a plain record (key and value
bytes, nothing else) ``FastTopic.send`` hands it to the same producer and returns the
producer's delivery future. The same producer, so the order per partition, the batching, the
flush before every offset commit and the acknowledgement the customer batch waits for
(``runtime/delivery.py``) do not change. Faust's sensors are not called for these records, so
the topic counts them when the broker answers (``omnistream_kafka_produced_records_total``,
``..._produce_errors_total``). A send with headers (the DLQ: its sensor counts dead letters by
the reason in a header), a partition, a timestamp or a callback takes Faust's path.

Measured on the embedded broker, CPU per acknowledged record with aiokafka's own work included
(``benchmarks/bench_produce.py``): see docs/performance.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Any

import faust

from omnistream.observability.metrics import M

__all__ = ["FastTopic"]


class FastTopic(faust.Topic):
    """Faust's topic, cheaper per record (see the module docstring); the app's topic class, so
    table changelog topics are ones too."""

    async def _get_producer(self) -> Any:
        producer = self.app.producer
        if producer.started and not self.app.in_transaction:
            return producer
        return await self.app.maybe_start_producer()

    async def send(
        self,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: list[tuple[str, bytes]] | Mapping[str, bytes] | None = None,
        **options: Any,
    ) -> Awaitable[Any]:
        if headers or any(v is not None and v is not False for v in options.values()):
            return await super().send(key=key, value=value, headers=headers or None, **options)
        name = self.get_topic_name()
        producer = await self._get_producer()
        delivery: asyncio.Future[Any] = await producer.send(name, key, value, None, None, None)
        delivery.add_done_callback(lambda done: _count(name, done))
        return delivery


_counters: dict[tuple[str, bool], Any] = {}


def _count(topic: str, delivery: asyncio.Future[Any]) -> None:
    """Count the record once the broker answered (what Faust's sensor does for its sends)."""
    ok = not delivery.cancelled() and delivery.exception() is None
    child = _counters.get((topic, ok))
    if child is None:
        metric = M.kafka_produced if ok else M.kafka_produce_errors
        child = _counters[(topic, ok)] = metric.labels(topic)
    child.inc()
