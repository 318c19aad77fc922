"""Customer state written once per batch, not once per event (DESIGN.md §4).

This is Kafka Streams' record cache with its commit interval. The customer agent handles each
input at once (engine, send commands produced without waiting), keeps the rows it changed here,
and every ``max_records`` inputs or ``max_age_s`` seconds it flushes, in this order:

1. **outputs**: wait until the broker acknowledged every record the batch produced (send
   commands, identity messages, journey events, forwards), so a row never records an input
   whose outputs could still be lost (``runtime/delivery.py``);
2. **state**: add the journey events the batch produced to the journey stats
   (``runtime/journey_events.py``), then write each changed row once, through the Faust table
   (changelog and local store, standby replicas and recovery as before), in the context of an
   input of the row's own partition (the table takes its partition from the current event);
3. **offsets**: ack the batch's inputs; only acked offsets are committed, and the commit waits
   for the changelog records (``runtime/acks.py``).

A crash anywhere before step 3 leaves the inputs unacked: the next owner handles them again, and
their outputs repeat with the same ids (send dedup, idempotent identity messages). Rows are read
once per batch (decoded on first use, then kept here until the flush), so a customer's later
inputs in the batch see the earlier ones. Code that reads or writes the tables directly
(identity messages at a key the batch holds, erasure) flushes the inputs before it first
(``flush_earlier``), so it never sees a stale row; the input itself is acked at the next flush,
after it was carried out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol

from faust.streams import _current_event

from omnistream.clock import monotonic, utcnow
from omnistream.domain.journey_events import JourneyEvent
from omnistream.domain.state import CustomerState
from omnistream.observability.metrics import M
from omnistream.runtime.delivery import Pending, delivered

__all__ = ["CustomerBatch", "in_event_context"]

log = logging.getLogger(__name__)


@contextmanager
def in_event_context(event: Any) -> Iterator[None]:
    """Make ``event`` Faust's current event: a table write takes its changelog partition (and
    the RocksDB partition) from it. Used to write a partition's rows outside its iteration."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class BatchStats(Protocol):
    """The journey stats a batch adds at its flush (``journey_events.StatsDeltas``)."""

    def add(self, produced: Sequence[JourneyEvent], source: Any) -> None: ...

    def write(self, now: datetime) -> None: ...


class CustomerBatch:
    """The inputs handled since the last flush, their outputs and the rows they changed."""

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        *,
        max_records: int,
        max_age_s: float,
        on_error: Callable[[BaseException], Awaitable[None]],
        stats: BatchStats | None = None,
    ) -> None:
        self._table = table
        self._stats = stats
        self.max_records = max_records
        self.max_age_s = max_age_s
        self._on_error = on_error
        self.lock = asyncio.Lock()
        """Held while one input is handled and while the batch flushes."""
        self._rows: dict[bytes, CustomerState | None] = {}
        self._dirty: dict[bytes, Any] = {}  # key -> the input (Faust event) that changed it last
        self._pending: Pending = []
        self._inputs: list[Any] = []
        self._started = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Future[None] | None = None  # the timed flush, kept referenced

    def __len__(self) -> int:
        return len(self._inputs)

    def row(self, key: bytes) -> CustomerState | None:
        """The customer's row as this batch left it (decoded from the table once per batch)."""
        if key not in self._rows:
            raw = self._table.get(key)
            self._rows[key] = CustomerState.from_bytes(raw) if raw else None
        return self._rows[key]

    def put(self, key: bytes, state: CustomerState) -> None:
        """Keep ``state`` as the customer's row, written at the flush in the context of the input
        being handled (which is in the row's partition)."""
        self._rows[key] = state
        self._dirty[key] = self._inputs[-1]

    def count(self, produced: Sequence[JourneyEvent]) -> None:
        """The journey events of the input handled now: counted in the stats at the flush."""
        if self._stats is not None:
            self._stats.add(produced, self._inputs[-1])

    def produced(self, pending: Pending) -> None:
        """Records the batch's inputs produced; the flush waits for their acknowledgement."""
        self._pending.extend(pending)

    def hold(self, source: Any) -> None:
        """``source`` (a Faust event) is the input handled now; it is acked after the flush."""
        if not self._inputs:
            self._started = monotonic()
            self._timer = asyncio.get_running_loop().call_later(self.max_age_s, self._flush_later)
        self._inputs.append(source)

    @property
    def full(self) -> bool:
        return len(self._inputs) >= self.max_records

    def holds(self, key: bytes) -> bool:
        """Whether the batch read or changed ``key``'s row since its last flush: code that reads
        or writes that row in the tables directly must call ``flush_earlier`` first."""
        return key in self._rows

    async def flush(self, *, keep_current: bool = False) -> None:
        """Outputs, then rows, then acks (see the module docstring). Call with ``lock`` held.

        ``keep_current``: the input being handled stays in the batch, unacked, for the next
        flush: it is flushed only after it was handled."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        kept = self._inputs[-1:] if keep_current else []
        inputs = self._inputs[: len(self._inputs) - len(kept)]
        pending, dirty = self._pending, self._dirty
        self._pending, self._dirty, self._inputs = [], {}, []
        rows, self._rows = self._rows, {}
        if inputs or dirty:
            await delivered(pending)
            if self._stats is not None:
                self._stats.write(utcnow())
            for key, source in dirty.items():
                state = rows[key]
                assert state is not None  # put() stores rows, never None
                with in_event_context(source):
                    self._table[key] = state.to_bytes()
            for source in inputs:
                source.ack()
            M.customer_batch_records.observe(len(inputs))
            M.customer_batch_seconds.observe(monotonic() - self._started)
        for source in kept:
            self.hold(source)

    async def barrier(self) -> None:
        """Flush now, every input included. A failed flush stops the worker (``on_error``): its
        inputs can no longer be acked, so their offsets would never commit; after the restart
        the next owner handles them again."""
        await self._guarded_flush(keep_current=False)

    async def flush_earlier(self) -> None:
        """Flush the inputs before the one being handled, which is about to read or write the
        tables directly (identity messages, erasure). The current input stays unacked until
        the next flush: acking it now would let its offset commit before it was carried out."""
        await self._guarded_flush(keep_current=True)

    async def _guarded_flush(self, *, keep_current: bool) -> None:
        try:
            await self.flush(keep_current=keep_current)
        except Exception as exc:
            log.exception("customer batch flush failed")
            await self._on_error(exc)
            raise

    def _flush_later(self) -> None:
        self._timer = None
        self._flushing = asyncio.ensure_future(self._timed_flush())

    async def _timed_flush(self) -> None:
        async with self.lock:
            with contextlib.suppress(Exception):  # reported, and the worker stops: barrier()
                await self.barrier()
