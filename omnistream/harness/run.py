"""The worker's own agent functions, run in process on the memory broker and a manual clock.

The harness builds a ``Runtime`` (``runtime/runtime.py``) whose topics are memory topics, whose
tables are memory tables and whose clock is the manual one, and hands the records to the very
functions the worker's Faust agents call:

- an input is produced at its timestamp: a producer's event to its source topic, keyed by its
  highest-ranked identifier as a keyed source does, and read by
  ``runtime/customers.on_source_record`` (ingest's validation and routing, then the engine); an
  event omnistream itself makes (a scripted receipt, ``message_*``) straight to
  ``omni.customer-events``, as the receipt handler does, read by ``customers.on_record``;
- before it, every timer due by then fires, earliest first, through the worker's timer loop
  body (``runtime/timers.fire_due``: a ``timer_fired`` record in the customer's partition),
  gated like the worker's on the source partitions read so far (``runtime/watermarks.py``;
  everything produced before is read by then, so the gate is open);
- each record goes through the customer agent's batch (``runtime/batch.py``) with the worker's
  ``guarded`` around it (an error dead-letters, as in the worker), flushed after every record;
- with a delivery model, each send record goes through ``runtime/senders.on_send`` inside
  ``guarded``, as the channel agent runs it: the real dispatcher on memory stores with scripted
  providers (``harness/delivery.py``).

What stays the worker's alone: Faust's consumer (fetching, committing, rebalances), the batch's
size and age bounds (the harness flushes after each record), metrics scraping and the web routes.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Final

from omnistream.channels.dispatcher import Dispatch
from omnistream.channels.receipts import ReceiptHandler
from omnistream.config import Settings
from omnistream.domain.commands import Send
from omnistream.domain.events import Event
from omnistream.domain.identity import route_key
from omnistream.domain.state import CustomerState
from omnistream.domain.vocabulary import CHANNELS, SYSTEM_SOURCE, is_system_event_type
from omnistream.harness.broker import MemoryBroker, MemoryRecord, MemoryTopic
from omnistream.harness.clock import ManualClock
from omnistream.harness.delivery import HARNESS_CHANNEL_SETTINGS, Delivery, build_dispatcher
from omnistream.harness.tables import MemoryTable
from omnistream.journey.model import Catalog
from omnistream.runtime import customers, senders
from omnistream.runtime import timers as timer_loop
from omnistream.runtime.batch import CustomerBatch
from omnistream.runtime.dlq import DeadLetter, guarded
from omnistream.runtime.faust_types import Message
from omnistream.runtime.partitions import OwnedPartitions
from omnistream.runtime.runtime import Runtime, StepObserver, Topics
from omnistream.runtime.timer_index import TimerIndex
from omnistream.runtime.watermarks import InputWatermarks, ReadPosition
from omnistream.runtime.wiring import ChannelAdapters
from omnistream.storage.memory import MemoryDedupStore

__all__ = [
    "CUSTOMER_EVENTS",
    "DLQ",
    "DispatchObserver",
    "Harness",
    "Rejected",
    "send_topic",
    "source_topic_name",
]

_SETTINGS: Final = Settings.model_construct()
"""The worker's defaults, not the environment's: a run repeats wherever it runs."""
CUSTOMER_EVENTS: Final = f"{_SETTINGS.topic_prefix}customer-events"
DLQ: Final = f"{_SETTINGS.topic_prefix}dlq"
_MAX_INPUTS: Final = 100_000


def send_topic(channel: str) -> str:
    """The topic a channel agent reads, as the worker names it with the default prefix."""
    return f"{_SETTINGS.topic_prefix}send.{channel}"


def source_topic_name(source: str) -> str:
    """The source topic a backend would produce an event of ``source`` to (the first one for a
    source the worker has no topic of: the topic a record comes on does not change its
    handling)."""
    topics = _SETTINGS.source_topics
    named = f"{_SETTINGS.topic_prefix}events.{source}"
    return named if named in topics else topics[0]


def _made_by_omnistream(event: Event) -> bool:
    return event.source == SYSTEM_SOURCE or is_system_event_type(event.type)


def _by_seq(record: MemoryRecord) -> int:
    return record.seq


DispatchObserver = Callable[[datetime, Send, Dispatch], None]
"""Called after the dispatcher handled a send, with the time and its outcomes and forward."""


@dataclass(frozen=True)
class Rejected:
    """A record the worker dead-lettered, with its reason."""

    record: MemoryRecord
    reason: str
    detail: str


class _NoKeys:
    """Redis as erasure sees it in the harness: the memory stores keep no per-customer keys that
    a scan would find, so there is nothing to delete."""

    async def ping(self) -> bool:
        return True

    async def _none(self) -> Any:
        return
        yield

    def scan_iter(self, match: str, count: int) -> Any:
        return self._none()

    async def delete(self, *names: Any) -> int:
        return 0


def _channel_adapters(delivery: Delivery, clock: Callable[[], datetime]) -> ChannelAdapters:
    return ChannelAdapters(
        settings=HARNESS_CHANNEL_SETTINGS,
        providers={},
        channels={channel: f"scripted_{channel}" for channel in CHANNELS},
        dispatcher=build_dispatcher(delivery, clock),
        receipts=ReceiptHandler({}, MemoryDedupStore()),
    )


@dataclass
class Harness:
    """One worker owning every partition; ``publish`` inputs, then ``run_until`` a time."""

    catalog: Catalog
    clock: ManualClock
    partitions: int = 4
    broker: MemoryBroker = field(init=False)
    customers: MemoryTable = field(default_factory=MemoryTable)
    aliases: MemoryTable = field(default_factory=MemoryTable)
    timers: TimerIndex = field(default_factory=TimerIndex)
    observers: list[StepObserver] = field(default_factory=list)
    delivery: Delivery | None = None
    """With a delivery model, sends go through the channel agents; without, they stay on the
    send topics."""
    dispatch_observers: list[DispatchObserver] = field(default_factory=list)
    runtime: Runtime = field(init=False)
    _inputs: list[tuple[datetime, int, str, bytes, bytes]] = field(default_factory=list)
    _seq: int = 0

    def __post_init__(self) -> None:
        self.broker = MemoryBroker(self.partitions)

        def topic(name: str) -> MemoryTopic:
            return MemoryTopic(self.broker, name)

        owned = OwnedPartitions(CUSTOMER_EVENTS, self.partitions)
        owned.owned = frozenset(range(self.partitions))
        watermarks = InputWatermarks(_SETTINGS.source_topics, self._read_position)
        self.runtime = Runtime(
            settings=_SETTINGS,
            catalog=self.catalog,
            app=None,
            topics=Topics(
                customer_events=topic(CUSTOMER_EVENTS),
                customer_inputs=None,
                dlq=topic(DLQ),
                sends={channel: topic(send_topic(channel)) for channel in CHANNELS},
            ),
            customers=self.customers,
            aliases=self.aliases,
            redis=_NoKeys(),
            owned=owned,
            channels=_channel_adapters(self.delivery or Delivery(), self._now),
            timers=self.timers,
            clock=self._now,
            step_observers=self.observers,
            watermarks=watermarks,
        )

    def _now(self) -> datetime:
        return self.clock.now

    def _read_position(self, topic: str, partition: int) -> ReadPosition:
        """The harness's one consumer reads every topic from its first record and hands each
        record to the agent as it takes it."""
        taken = self.broker.position(topic, partition)
        return ReadPosition(0, taken, taken, self.broker.end_offset(topic, partition))

    @property
    def rejected(self) -> list[Rejected]:
        """Every record the worker's functions dead-lettered, in the order they did."""
        found = []
        for record in sorted(self.broker.records(DLQ), key=_by_seq):
            letter = DeadLetter.from_headers(record.headers)
            found.append(Rejected(record, letter.reason, letter.detail))
        return found

    def publish(self, event: Event) -> None:
        """Schedule ``event`` to be produced at its timestamp (ties keep publication order):
        to its source topic under its highest-ranked identifier, as a keyed source produces it,
        or, if only omnistream may say it, to ``omni.customer-events`` as omnistream does."""
        self._seq += 1
        topic = CUSTOMER_EVENTS if _made_by_omnistream(event) else source_topic_name(event.source)
        item = (event.timestamp, self._seq, topic, route_key(event).encode(), event.to_json())
        heapq.heappush(self._inputs, item)

    def run_until(self, until: datetime) -> None:
        """Produce every input and fire every timer due by ``until``, in time order."""
        asyncio.run(self._run_until(until))

    async def _run_until(self, until: datetime) -> None:
        batch = CustomerBatch(self.customers, max_records=1, max_age_s=3600, on_error=_reraise)
        await self._drain(batch)  # records already on the topics (written there by a test)
        for _ in range(_MAX_INPUTS):
            due = self.timers.oldest_due()
            next_input = self._inputs[0][0] if self._inputs else None
            if due is not None and due <= until and (next_input is None or due <= next_input):
                await self._fire(due)
            elif next_input is not None and next_input <= until:
                at, _, topic, key, raw = heapq.heappop(self._inputs)
                self.clock.advance_to(at)
                self.broker.send(topic, key, raw)
            else:
                break
            await self._drain(batch)
        self.clock.advance_to(until)

    def sends(self) -> list[Send]:
        """Every send command produced, in the order the channel topics hold them."""
        channels = [t for t in self.broker.topics() if t.startswith(send_topic(""))]
        records = sorted((r for t in channels for r in self.broker.records(t)), key=_by_seq)
        return [Send.model_validate_json(r.value) for r in records]

    def seed(self, state: CustomerState) -> None:
        """Put a row in the table before the run (a scenario's known profile)."""
        self.customers[state.key.encode()] = state.to_bytes()

    def row(self, key: str) -> CustomerState | None:
        raw = self.customers.get(key.encode())
        return CustomerState.from_bytes(raw) if raw else None

    async def _fire(self, due: datetime) -> None:
        """The worker's timer loop at ``due`` (``runtime/timers.fire_due``)."""
        self.clock.advance_to(due)
        await timer_loop.fire_due(self.runtime, due)

    async def _drain(self, batch: CustomerBatch) -> None:
        """Consume until quiet: the customer agent, then (with a delivery model) the channels."""
        while True:
            await self._customer_agent(batch)
            if self.delivery is None or not await self._channel_agents():
                return

    async def _customer_agent(self, batch: CustomerBatch) -> None:
        """What the worker's ``customers`` agent does with each record, in production order."""
        sources = frozenset(_SETTINGS.source_topics)
        while True:
            unread = [
                record
                for topic in (*sorted(sources), CUSTOMER_EVENTS)
                for record in self.broker.unread(topic)
            ]
            if not unread:
                return
            record = min(unread, key=_by_seq)
            self.broker.take(record)
            handle = customers.on_source_record if record.topic in sources else customers.on_record
            async with batch.lock:
                batch.hold(record)
                await guarded(
                    self.runtime, "customer", record, partial(handle, self.runtime, batch)
                )
                await batch.barrier()

    async def _channel_agents(self) -> bool:
        """Each unread send through ``runtime/senders.on_send``; False when there was none."""
        handled = False
        for channel in CHANNELS:
            for record in self.broker.poll(send_topic(channel)):
                await guarded(self.runtime, "channel", record, partial(self._on_send, channel))
                record.ack()
                handled = True
        return handled

    async def _on_send(self, channel: str, record: Message) -> None:
        handled = await senders.on_send(self.runtime, channel, record)
        if handled is not None:
            send, result = handled
            for observer in self.dispatch_observers:
                observer(self.clock.now, send, result)


async def _reraise(exc: BaseException) -> None:
    """The worker stops on a failed flush; the harness raises it to its caller."""
    raise exc
