"""A Faust transport driver: Faust's aiokafka driver with a configurable fetch wait, and a seek
back to committed offsets that loses nothing (``seek_assigned_to_committed``).

Faust hard-codes ``fetch_max_wait_ms=1500`` for its consumer. Kafka answers a fetch as soon as
records arrive, but a broker may hold it for the whole wait (Tansu does: with plain aiokafka,
409 ms median delivery at 1500 ms, 2 ms at 100 ms), and every hop of the pipeline then pays it:
event->provider latency was 1.7 s at 20 events/s. Here the wait is a setting
(``OMNISTREAM_FETCH_MAX_WAIT_MS``). Selected with the broker URL scheme ``omnikafka://``, which
``build_runtime`` uses for the consumer and the producer.

The producer is aiokafka's with one fix (``TrackingProducer``): aiokafka's client asks for the
metadata of the topics it tracks, and all topics while it tracks none. A topic first seen in that
all-topics metadata is never tracked, so the first send to a topic it did not know narrows the
next metadata request to that one topic, the untracked topics drop out of the metadata, and a
batch still queued for one of them waits for a leader forever (the sender spins, and Faust's
commit, which flushes the producer, hangs). It needs a queued batch at that moment: with
Faust's ``producer_linger`` at 5 ms the worker hit it in 3 of 29 runs of the exact-counters
test (0 of 14 with this fix); ``tests/integration/test_producer_metadata.py`` shows it alone.

Table recovery reads each changelog partition to its end offset checked by a fetch, not only as
ListOffsets lists it (Tansu lists it short; ``runtime/end_offsets.py``).

The consumer skips the record batches it cannot decode instead of crashing (``ConsumerThread.
_fetch_records``; why and how in ``runtime/undecodable.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from functools import cached_property
from typing import Any, cast

import aiokafka
from aiokafka.errors import IllegalStateError
from aiokafka.structs import TopicPartition as TP
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka

from omnistream.observability.metrics import M
from omnistream.runtime import undecodable
from omnistream.runtime.acks import UnackedRecords
from omnistream.runtime.continuity import OffsetContinuity, Verdict
from omnistream.runtime.end_offsets import true_end_offsets

__all__ = [
    "SCHEME",
    "TrackingProducer",
    "Transport",
    "driver_url",
    "in_offset_order",
    "queued_offsets",
    "register",
    "seek_assigned_to_committed",
]

log = logging.getLogger(__name__)

SCHEME = "omnikafka"
DEFAULT_FETCH_MAX_WAIT_MS = 100
_AIOKAFKA_CONSUMER = aiokafka.AIOKafkaConsumer  # bound at import: tests may patch the module


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = getattr(self.app, "omnistream_fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS)
        if isinstance(consumer, _AIOKAFKA_CONSUMER):
            consumer._fetch_max_wait_ms = int(wait_ms)  # aiokafka reads it when it starts
        return consumer

    async def _fetch_records(
        self,
        consumer: aiokafka.AIOKafkaConsumer,
        active_partitions: set[TP],
        timeout: float | None = None,  # noqa: ASYNC109 (Faust's signature)
        max_records: int | None = None,
    ) -> Any:
        """Faust's fetch, with batches that cannot be decoded skipped and reported: aiokafka
        raises out of ``fetched_records`` for them, which crashed Faust's fetcher service and
        the worker (and the next owner of the partition)."""
        undecodable.tolerate(consumer._fetcher, self._on_undecodable)
        return await super()._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records
        )

    def _on_undecodable(self, batch: undecodable.UndecodableBatch) -> None:
        undecodable.record(batch)
        continuity = getattr(self.consumer, "continuity", None)
        if continuity is not None:  # a jump over the batch is expected, not a rewind
            continuity.skipped(TP(batch.topic, batch.partition), batch.first_offset,
                               batch.last_offset)  # fmt: skip
        undecodable.hand_over(self.app, self.consumer, self.parent_loop, batch)

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        """The end offsets table recovery reads up to, checked by fetching: a broker may list
        them short (``runtime/end_offsets.py``), and recovery then lost rows."""
        listed = await super()._highwaters(partitions)
        if self.consumer.in_transaction:
            return cast(Mapping[TP, int], listed)
        probe = self._create_client_consumer(cast(faust_aiokafka.Transport, self.transport))
        return cast(Mapping[TP, int], await true_end_offsets(probe, listed))

    async def seek_to_committed(self) -> Mapping[Any, int]:
        # Faust's type says int; aiokafka (and this) give None for "nothing committed".
        continuity = cast("Consumer", self.consumer).continuity
        committed = await self.call_thread(
            seek_assigned_to_committed, self._ensure_consumer(), self.app, continuity
        )
        return cast(Mapping[Any, int], committed)

    async def seek_on_thread(self, tp: TP, offset: int) -> None:
        """Seek on the consumer's own thread (aiokafka is not thread-safe); a partition
        revoked meanwhile is left alone."""
        await self.call_thread(_seek, self._ensure_consumer(), tp, offset)

    async def align_positions(self) -> list[TP]:
        """Seek every stream partition whose position ran past its expected offset back to it
        (records fetched and dropped while the flow was stopped, after the seek); returns them.
        Without this a quiet partition would keep them unread until its next record."""
        continuity = cast("Consumer", self.consumer).continuity
        return cast(list[TP], await self.call_thread(_align, self._ensure_consumer(), continuity))


async def _seek(consumer: Any, tp: TP, offset: int) -> None:
    try:
        consumer.seek(tp, offset)
    except IllegalStateError:  # revoked meanwhile: its next owner starts from the commit
        pass


async def _align(consumer: Any, continuity: OffsetContinuity) -> list[TP]:
    assigned = consumer.assignment()
    moved = []
    for tp, expected in continuity.expectations().items():
        if tp not in assigned:
            continue
        try:
            position = await consumer.position(tp)
            if position is not None and position > expected:
                consumer.seek(tp, expected)
                moved.append(tp)
        except IllegalStateError:  # revoked meanwhile
            continue
    return moved


async def seek_assigned_to_committed(
    consumer: Any, app: Any, continuity: OffsetContinuity | None = None
) -> dict[TP, int | None]:
    """Faust drops the records it fetched while its flow was stopped (a rebalance) and seeks
    back with aiokafka's ``seek_to_committed``, which has two holes, each losing those records:

    - it raises on the first partition that was revoked while it awaited a committed offset,
      and the partitions after it keep their advanced position;
    - it leaves a partition with nothing committed yet at its advanced position.

    Here each partition is handled on its own: a revoked one is skipped (its next owner starts
    from the committed offset), and a stream partition with nothing committed goes back to its
    beginning, as ``auto_offset_reset=earliest`` would. Changelog partitions are left alone:
    table recovery positions those itself.

    ``continuity`` learns where each stream partition now is (the committed offset, or the
    beginning resolved to an offset) in the same step as the seek (``runtime/continuity.py``).
    """
    changelogs: set[str] = set(app.tables.changelog_topics)  # topic names
    committed: dict[TP, int | None] = {}
    for tp in consumer.assignment():
        offset = await consumer.committed(tp)
        committed[tp] = offset
        try:
            if offset is not None and offset > 0:
                consumer.seek(tp, offset)
                position: int | None = offset
            elif tp.topic not in changelogs:
                await consumer.seek_to_beginning(tp)
                position = await consumer.position(tp)
            else:
                continue
            if continuity is not None:
                continuity.seeked({tp: position})
        except IllegalStateError:  # revoked while we awaited its offset
            continue
    return committed


class TrackingProducer(aiokafka.AIOKafkaProducer):  # type: ignore[misc]
    """aiokafka's producer, with every topic it sends to tracked by its client (see above)."""

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        if topic not in self.client._topics:
            self.client.add_topic(topic)  # the next metadata request includes it, and keeps it
        return await super().send(topic, *args, **kwargs)


class Producer(faust_aiokafka.Producer):
    """Faust's producer whose flush (run before every offset commit) waits until every record
    given to its buffer, i.e. every table changelog write, is acknowledged (``runtime/acks.py``:
    state before offsets)."""

    @property
    def _producer_type(self) -> type[aiokafka.AIOKafkaProducer]:
        return TrackingProducer

    @cached_property
    def unacked(self) -> UnackedRecords:
        return UnackedRecords()

    def send_soon(self, fut: Any) -> None:
        self.unacked.track(fut)
        super().send_soon(fut)

    async def flush(self) -> None:
        await super().flush()
        await self.unacked.wait()


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose streams get each partition's records in offset order,
    none skipped (``runtime/continuity.py``: a rebalance could move the position past records
    nobody handled, and Faust then committed past them)."""

    _thread: ConsumerThread

    def _new_consumer_thread(self) -> ConsumerThread:
        self.continuity  # noqa: B018 (made here, on the app's loop, before the thread exists)
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def client_position(self, tp: TP) -> tuple[int | None, int | None]:
        """(position, high watermark) of ``tp`` as the Kafka client last knew them: the offset
        after the last record it handed out (transaction markers and skipped batches included)
        and the broker's end from the last fetch; None when unknown or not assigned. Plain
        reads of the client's partition state, as its own ``highwater`` does."""
        try:
            client = self._thread._ensure_consumer()
            state = client._subscription.subscription.assignment.state_value(tp)
        except Exception:  # not started, not assigned, or no subscription yet
            return None, None
        position = state.position if state.has_valid_position else None
        return position, state.highwater

    @cached_property
    def continuity(self) -> OffsetContinuity:
        self._guard_queue_clears()
        return OffsetContinuity()

    def _guard_queue_clears(self) -> None:
        """Faust's flow control clears every stream queue whenever it resumes, also when the
        queues hold records read after the rebalance's seek (table recovery seeks with the
        flow running, then resumes): those records were lost for good (the failover test's
        stall). Before each clear, note the lowest offset still queued per partition and read
        the partitions again from there."""
        flow_control = self.app.flow_control
        original = flow_control.clear

        def clear() -> None:
            lowest = queued_offsets(flow_control, self.app.topics.acks_enabled_for)
            original()
            if lowest:
                for tp, offset in self.continuity.held_back(lowest).items():
                    self._reseeks.add(asyncio.ensure_future(self._reseek(tp, offset)))

        flow_control.clear = clear  # type: ignore[method-assign]

    @cached_property
    def _reseeks(self) -> set[asyncio.Future[None]]:
        return set()  # kept referenced until done

    async def _reseek(self, tp: TP, offset: int) -> None:
        try:
            await self._thread.seek_on_thread(tp, offset)
        finally:
            self._reseeks.difference_update({f for f in self._reseeks if f.done()})

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:  # noqa: ASYNC109
        if self.flow_active and not self.app.flow_control.is_active():
            await asyncio.sleep(0.05)  # a rebalance or recovery holds the streams: read later
            return
        records = super().getmany(timeout)
        acked = self.app.topics.acks_enabled_for
        read_offset = self._read_offset
        judged = in_offset_order(
            records, self.continuity, acked, self._rewind, self._add_gap, self._flowing
        )
        async for tp, message in judged:
            if acked(message.topic):
                read_offset[tp] = message.offset  # Faust sees the next record: no gap, no drop
            yield tp, message

    def _flowing(self) -> bool:
        """Faust keeps what it reads now: its consumer flow runs and the app's flow control
        is not suspended (on resuming, Faust clears the stream queues of what came in)."""
        return bool(self.flow_active and self.app.flow_control.is_active())

    async def _rewind(self, tp: TP, offset: int, expected: int) -> None:
        if offset != expected:
            log.warning(
                "%s[%d]: read offset %d where %d was next; fetching again from %d",
                tp.topic, tp.partition, offset, expected, expected,
            )  # fmt: skip
            M.consumer_rewinds.labels(tp.topic).inc()
        await self._thread.seek_on_thread(tp, expected)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        for tp in await self._thread.align_positions():
            M.consumer_rewinds.labels(tp.topic).inc()
            log.info("%s[%d]: position was past unread records; sought back", tp.topic,
                     tp.partition)  # fmt: skip

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        self.continuity.seeked({partition: offset})

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self.continuity.forget(revoked)
        await super().on_partitions_revoked(revoked)


def queued_offsets(flow_control: Any, acked: Callable[[str], bool]) -> dict[TP, int]:
    """The lowest offset per partition among the events waiting in the stream queues that
    ``flow_control`` manages (topics with acks only)."""
    lowest: dict[TP, int] = {}
    for queue in list(flow_control._queues):
        for event in list(getattr(queue, "_queue", ())):
            message = getattr(event, "message", None)
            if message is None or not acked(message.topic):
                continue
            tp = message.tp
            lowest[tp] = min(lowest.get(tp, message.offset), message.offset)
    return lowest


async def in_offset_order(
    records: AsyncIterator[tuple[TP, Any]],
    continuity: OffsetContinuity,
    acked: Callable[[str], bool],
    rewind: Callable[[TP, int, int], Awaitable[None]],
    add_gap: Callable[[TP, int, int], Awaitable[None]],
    flowing: Callable[[], bool],
) -> AsyncIterator[tuple[TP, Any]]:
    """``records`` (one fetch, as Faust's consumer hands them out) judged by ``continuity``:
    delivered (after ``add_gap`` for a known gap), dropped as stale, or their partition sent
    back with ``rewind(tp, offset, expected)`` and the rest of its records in this fetch
    dropped. While the streams are held (a rebalance, a recovery) nothing is judged or
    delivered, as Faust would drop it; the partition goes back to the first record held back,
    so a quiet partition does not keep it unread. Topics without acks (changelogs) pass
    untouched."""
    rewound: set[TP] = set()
    async for tp, message in records:
        if not acked(message.topic):
            yield tp, message  # changelogs: table recovery reads them its own way
            continue
        if tp in rewound:
            continue
        if not flowing():
            rewound.add(tp)
            expected = continuity.expected(tp)
            await rewind(tp, message.offset, message.offset if expected is None else expected)
            continue
        verdict, expected = continuity.check(tp, message.offset)
        if verdict is Verdict.DELIVER:
            yield tp, message
        elif verdict is Verdict.GAP:
            assert expected is not None
            M.consumer_gaps.labels(message.topic).inc()
            await add_gap(tp, expected, message.offset - 1)
            yield tp, message
        elif verdict is Verdict.REWIND:
            assert expected is not None
            rewound.add(tp)
            await rewind(tp, message.offset, expected)
        else:
            M.consumer_stale_records.labels(message.topic).inc()


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    Producer = Producer


def register() -> None:
    """Make ``omnikafka://`` URLs resolve to this driver (idempotent)."""
    drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"


def driver_url(broker: str) -> str:
    """The broker URL(s) with our scheme: ``kafka://a:9092;kafka://b:9092`` -> omnikafka://..."""
    return ";".join(
        f"{SCHEME}://{part.split('://', 1)[-1]}" for part in broker.split(";") if part.strip()
    )
