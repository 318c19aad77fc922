"""Durable waits. The customer row is the source of truth; this is only an index of it.

Each worker keeps a heap of the pending timers of the partitions it actively owns. It is rebuilt
from the table after every rebalance (once recovery is done), so a timer survives crashes and
moves with its partition. A due timer is produced as a ``timer_fired`` input into the customer's
own partition; the engine ignores a firing whose timer is no longer pending, so firing twice
(e.g. after a crash between produce and commit) never sends twice.

A due timer fires only once the source partitions of its customer's partition were read up to
its due time (``runtime/watermarks.py``): waits run from when their input happened, so after a
failover a wait may be due as soon as its cart is read, and the order placed right after the
cart must be read before the push is decided.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from faust.types import TP

from omnistream.domain.timers import timer_fired_event
from omnistream.observability.metrics import M
from omnistream.runtime.partitions import partition_of
from omnistream.runtime.timer_index import TimerIndex
from omnistream.runtime.watermarks import InputWatermarks, ReadPosition

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["TimerIndex", "fire_due", "install", "timer_fired_event"]

log = logging.getLogger(__name__)

Due = tuple[str, str, datetime]
"""(customer key, timer id, due) of a timer taken from the index."""


def install(runtime: Runtime) -> None:
    app = runtime.app
    index = runtime.timers
    ready = asyncio.Event()
    partitions = runtime.settings.partitions
    runtime.watermarks = watermarks = _faust_watermarks(runtime)

    @app.on_partitions_assigned.connect
    async def _assigned(app_: Any, assigned: Any, **_: Any) -> None:
        watermarks.reset()

    async def rebuild() -> None:
        await app.tables.recovery.completed.wait()
        owned = runtime.owned.owned
        # Streamed, not list()ed: on RocksDB a list copied every row into Python memory (about
        # 600 MiB at 1M customers, never given back to the OS). No await below, so the table
        # cannot change while it is read.
        rows = (
            (key, raw)
            for key, raw in runtime.customers.data.items()
            if raw and partition_of(key, partitions) in owned
        )
        live = index.rebuild(rows)
        M.journey_live_instances.clear()
        for journey_id, count in live.items():
            M.journey_live_instances.labels(journey_id).set(count)
        log.info("timer index rebuilt: %d pending in partitions %s", len(index), sorted(owned))
        ready.set()

    @app.on_partitions_revoked.connect
    async def _revoked(app_: Any, revoked: Any, **_: Any) -> None:
        ready.clear()

    @app.on_rebalance_complete.connect
    async def _rebalanced(app_: Any, **_: Any) -> None:
        app.add_future(rebuild())

    @app.timer(interval=0.2)
    async def _fire_due() -> None:
        if not ready.is_set() or app.rebalancing:
            return
        await fire_due(runtime, runtime.clock())


def _faust_watermarks(runtime: Runtime) -> InputWatermarks:
    """The gate on Faust's consumer (``runtime/transport.py``): where it was positioned after
    the assignment and what its stream got (``runtime/continuity.py``), and the Kafka client's
    position and high watermark."""
    app = runtime.app

    def reader(topic: str, partition: int) -> ReadPosition:
        tp = TP(topic, partition)
        consumer = app.consumer
        continuity = consumer.continuity
        fetched, end = consumer.client_position(tp)
        return ReadPosition(continuity.started(tp), continuity.expected(tp), fetched, end)

    return InputWatermarks(runtime.settings.source_topics, reader)


async def fire_due(runtime: Runtime, now: datetime) -> None:
    """Produce a ``timer_fired`` input into the customer's partition for every timer due by
    ``now`` whose partition's source inputs were read up to its due time (``runtime.watermarks``;
    the others stay in the index for a later tick), earliest first. If the producer fails, the
    timers not produced yet go back into the index for the next tick."""
    due_now = _gated(runtime, runtime.timers.pop_due(now), now)
    for n, (key, timer_id, due) in enumerate(due_now):
        event = timer_fired_event(key, timer_id, due)
        try:
            await runtime.topics.customer_events.send(key=key.encode(), value=event.to_json())
        except Exception:  # the producer failed: keep the rest for the next tick
            log.exception("timer firing failed; %d timers kept for retry", len(due_now) - n)
            for left in due_now[n:]:
                runtime.timers.schedule(*left)
            return
        M.timer_lag_seconds.observe((now - due).total_seconds())


def _gated(runtime: Runtime, due_now: list[Due], now: datetime) -> list[Due]:
    """The timers that may fire now; the others go back into the index."""
    watermarks = runtime.watermarks
    if watermarks is None or not due_now:
        M.timers_held.set(0)
        return due_now
    partitions, owned = runtime.settings.partitions, runtime.owned.owned
    read: dict[int, datetime | None] = {}
    firing: list[Due] = []
    for timer in due_now:
        partition = partition_of(timer[0].encode(), partitions)
        if partition in owned and partition not in read:
            read[partition] = watermarks.read_up_to(partition, now)
        up_to = read.get(partition, now)  # not owned (any more): not this worker's to hold
        if up_to is None or up_to < timer[2]:
            runtime.timers.schedule(*timer)
        else:
            firing.append(timer)
    M.timers_held.set(len(due_now) - len(firing))
    return firing
