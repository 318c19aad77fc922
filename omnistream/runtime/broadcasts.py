"""Scheduled broadcasts on the worker: walk the owned partitions' rows once per occurrence.

Every ``broadcast_tick_s`` a worker asks which occurrences of the active broadcast journeys are
open (``journey/schedule.py``). For each open occurrence and each customer partition it owns,
it walks that partition's rows in key order, judges each (audience, not already armed or
entered, not missed) and produces one ``broadcast_due`` input per customer to be entered, keyed
by the customer, into ``omni.customer-events``. The customer agent then handles it like any
input (``journey/broadcast.py``): a timer at the customer's local time, and the entry through
the ordinary journey path (entry rules, caps, quiet hours, consent, send dedup).

Progress is durable per (journey, occurrence, partition) in the ``broadcasts`` table, written
into the changelog partition of the customer partition it describes, so it moves with that
partition: the cursor is the last key whose chunk of inputs the broker acknowledged, and
``done`` ends the scan. A worker that takes a partition over mid-scan continues after the
cursor; it repeats at most the chunk in flight, and a repeat has the same event id (dropped by
the row's recent ids) or finds the row already armed (skipped here or in the engine).
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson
from pydantic import ValidationError

from omnistream.clock import utcnow
from omnistream.domain.state import CustomerState
from omnistream.journey.broadcast import (
    broadcast_due_event,
    broadcast_timer_id,
    customer_due,
    in_audience,
)
from omnistream.journey.model import Catalog, Journey
from omnistream.journey.schedule import occurrence_id, open_occurrences
from omnistream.observability.metrics import M
from omnistream.runtime.batch import in_event_context
from omnistream.runtime.delivery import Pending, delivered
from omnistream.runtime.partitions import partition_of

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = [
    "PROGRESS_TABLE",
    "Broadcasts",
    "Progress",
    "Verdict",
    "install",
    "judge",
    "keys_by_partition",
    "progress_key",
    "snapshot_keys",
]

log = logging.getLogger(__name__)

PROGRESS_TABLE: Final = "broadcasts"
_HASH_CHUNK: Final = 10_000
"""Keys placed in partitions between two yields to the event loop (~25 ms)."""
_KEY_SLICE: Final = 2_000
"""Keys read from a RocksDB store between two yields to the event loop (~15 ms)."""

Verdict = Literal["turn", "audience", "already", "missed", "unreadable", "gone"]


@dataclass(frozen=True)
class Progress:
    """How far one partition's scan of one occurrence got."""

    cursor: str = ""
    """The last customer key of the last chunk whose inputs the broker acknowledged."""
    done: bool = False

    def to_bytes(self) -> bytes:
        return orjson.dumps({"cursor": self.cursor, "done": self.done})

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Progress:
        if not raw:
            return cls()
        data = orjson.loads(raw)
        return cls(cursor=str(data.get("cursor", "")), done=bool(data.get("done", False)))


def progress_key(journey_id: str, occurrence: str, partition: int) -> bytes:
    return f"{journey_id}\x1f{occurrence}\x1f{partition}".encode()


def judge(catalog: Catalog, journey: Journey, day: date, raw: bytes, now: datetime) -> Verdict:
    """What a scan does with one row: a ``turn`` for the customer, or why not.

    Cheap checks first: the row parse is needed anyway; the audience (a profile view and a
    condition, the dear part) only for customers still to be entered.
    """
    schedule = journey.trigger.schedule
    assert schedule is not None  # broadcast journeys only
    try:
        state = CustomerState.from_bytes(raw)
    except ValidationError:
        return "unreadable"
    if broadcast_timer_id(journey.id, occurrence_id(day)) in state.timers:
        return "already"
    due = customer_due(catalog, journey, state.profile.timezone, day)
    record = state.history.get(journey.id)
    if record is not None and record.last_entered_at is not None and record.last_entered_at >= due:
        return "already"
    if now > due + schedule.late:
        return "missed"
    profile = state.profile.model_dump(mode="json")
    return "turn" if in_audience(journey, catalog.targeting, profile, now) else "audience"


async def keys_by_partition(
    keys: Sequence[bytes], owned: frozenset[int], partitions: int
) -> dict[int, list[bytes]]:
    """The keys of each owned partition, sorted (the scan order a cursor refers to).

    Hashing a key costs ~2.6 us in Python, so a million keys yield to the event loop every
    10,000 rather than block it (and the consumer's heartbeats) for seconds.
    """
    found: dict[int, list[bytes]] = {p: [] for p in owned}
    for start in range(0, len(keys), _HASH_CHUNK):
        for key in keys[start : start + _HASH_CHUNK]:
            bucket = found.get(partition_of(key, partitions))
            if bucket is not None:
                bucket.append(key)
        await asyncio.sleep(0)
    for bucket in found.values():
        bucket.sort()
    return found


async def snapshot_keys(store: Any, app: Any) -> list[bytes] | None:
    """Every key of the rows table on this worker; None if a rebalance began meanwhile.

    ``memory://`` keeps the rows in a dict, which a write between two slices would break, and
    ``list`` copies a million keys of a dict in milliseconds: taken at once. ``rocksdb://``
    yields each key through Faust's store in Python: one ``list`` of 1M customers held the
    event loop for about 10 s (the ``rss`` benchmark's /metrics timed out when a broadcast
    opened). Each database's iterator reads one consistent snapshot, so the
    keys are taken in slices with a yield between them; a rebalance in between (Faust drops
    the databases it revokes) abandons the snapshot, and the next tick starts again.
    """
    rows = store if isinstance(store, dict) else getattr(store, "data", None)
    if isinstance(rows, dict):
        return list(rows)
    generation = getattr(app, "rebalancing_count", 0)
    keys: list[bytes] = []
    iterator = iter(store.keys())
    while chunk := list(islice(iterator, _KEY_SLICE)):
        keys += chunk
        await asyncio.sleep(0)
        if getattr(app, "rebalancing", False) or getattr(app, "rebalancing_count", 0) != generation:
            return None
    return keys


@dataclass(frozen=True)
class _Message:
    topic: str
    partition: int


@dataclass(frozen=True)
class _PartitionInput:
    """Stands in for Faust's current event so a progress write goes to ``partition``'s
    changelog partition (and RocksDB database), the one that moves with the customers."""

    message: _Message


class Broadcasts:
    """One worker's broadcast scans (state between ticks: none but the progress table)."""

    def __init__(self, runtime: Runtime, progress: Any) -> None:
        self.runtime = runtime
        self.progress = progress
        settings = runtime.settings
        self.lead = timedelta(seconds=settings.broadcast_lead_s)
        self.chunk = settings.broadcast_chunk_rows
        self.pause = settings.broadcast_chunk_pause_s

    def _owns(self, partition: int) -> bool:
        app = self.runtime.app
        busy = bool(getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False))
        return not busy and partition in self.runtime.owned.owned

    def read(self, journey_id: str, occurrence: str, partition: int) -> Progress:
        return Progress.from_bytes(
            self.progress.get(progress_key(journey_id, occurrence, partition))
        )

    def _write(self, journey_id: str, occurrence: str, partition: int, progress: Progress) -> None:
        stand_in = _PartitionInput(_Message(self.runtime.settings.customer_events_topic, partition))
        with in_event_context(stand_in):
            self.progress[progress_key(journey_id, occurrence, partition)] = progress.to_bytes()

    def work(self, now: datetime) -> list[tuple[Journey, date, int]]:
        """(journey, occurrence, partition) still to scan here at ``now``."""
        owned = sorted(self.runtime.owned.owned)
        todo: list[tuple[Journey, date, int]] = []
        for journey in self.runtime.catalog.scheduled:
            schedule = journey.trigger.schedule
            assert schedule is not None  # catalog.scheduled holds broadcasts only
            for day in open_occurrences(schedule, now, self.lead):
                occurrence = occurrence_id(day)
                todo += [
                    (journey, day, p)
                    for p in owned
                    if not self.read(journey.id, occurrence, p).done
                ]
        return todo

    async def tick(self) -> int:
        """Scan what is open and not done; returns the turns produced."""
        todo = self.work(utcnow())
        if not todo:
            return 0
        owned = frozenset(p for _, _, p in todo)
        keys = await snapshot_keys(self.runtime.customers.data, self.runtime.app)
        if keys is None:
            return 0  # a rebalance began: the next tick takes the keys again
        by_partition = await keys_by_partition(keys, owned, self.runtime.settings.partitions)
        log.info(
            "broadcast scan: %d rows in the table, %s in the partitions to scan",
            len(keys),
            {p: len(found) for p, found in sorted(by_partition.items())},
        )
        del keys
        turns = 0
        for journey, day, partition in todo:
            produced = await self.scan(journey, day, partition, by_partition[partition])
            if produced is None:
                return turns  # lost the partition or rebalancing: the next tick resumes
            turns += produced
        return turns

    async def scan(
        self, journey: Journey, day: date, partition: int, keys: Sequence[bytes]
    ) -> int | None:
        """Produce the turns of one partition from its cursor on; None if interrupted."""
        occurrence = occurrence_id(day)
        progress = self.read(journey.id, occurrence, partition)
        start = bisect_right(keys, progress.cursor.encode()) if progress.cursor else 0
        turns = 0
        for begin in range(start, len(keys), self.chunk):
            if not self._owns(partition):
                return None
            chunk = keys[begin : begin + self.chunk]
            turns += await self._produce(journey, day, chunk)
            if not self._owns(partition):
                return None  # the new owner continues from the cursor it has
            self._write(journey.id, occurrence, partition, Progress(cursor=chunk[-1].decode()))
            await asyncio.sleep(self.pause)
        if not self._owns(partition):
            return None
        cursor = keys[-1].decode() if keys else progress.cursor
        self._write(journey.id, occurrence, partition, Progress(cursor=cursor, done=True))
        M.broadcast_partitions_done.labels(journey.id).inc()
        log.info(
            "broadcast %s %s: partition %d done, %d turns",
            journey.id,
            occurrence,
            partition,
            turns,
        )
        return turns

    async def _produce(self, journey: Journey, day: date, chunk: Sequence[bytes]) -> int:
        """Judge ``chunk`` and produce its turns; return once the broker has them all."""
        now = utcnow()
        data: Mapping[bytes, bytes] = self.runtime.customers.data
        topic = self.runtime.topics.customer_events
        pending: Pending = []
        counts: dict[Verdict, int] = {}
        for key in chunk:
            raw = data.get(key)
            # gone: deleted since the snapshot (merged or erased)
            verdict = judge(self.runtime.catalog, journey, day, raw, now) if raw else "gone"
            counts[verdict] = counts.get(verdict, 0) + 1
            if verdict == "turn":
                event = broadcast_due_event(key.decode(), journey.id, day, now)
                pending.append(await topic.send(key=key, value=event.to_json()))
        await delivered(pending)
        for verdict, n in counts.items():
            M.broadcast_rows.labels(journey.id, verdict).inc(n)
        return len(pending)


def install(runtime: Runtime, options: Mapping[str, int]) -> Broadcasts:
    """The progress table and the scan timer of one worker."""
    app, settings = runtime.app, runtime.settings
    progress = app.Table(
        PROGRESS_TABLE,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        options=dict(options),
    )
    broadcasts = Broadcasts(runtime, progress)
    ready = asyncio.Event()

    async def settle() -> None:
        await app.tables.recovery.completed.wait()
        ready.set()

    @app.on_partitions_revoked.connect
    async def _revoked(app_: Any, revoked: Any, **_: Any) -> None:
        ready.clear()

    @app.on_rebalance_complete.connect
    async def _rebalanced(app_: Any, **_: Any) -> None:
        app.add_future(settle())

    @app.timer(interval=settings.broadcast_tick_s)
    async def _broadcast_tick() -> None:
        if not ready.is_set() or not runtime.catalog.scheduled:
            return
        try:
            await broadcasts.tick()
        except Exception:  # a failed produce or a closed store: the next tick resumes
            log.exception("broadcast scan interrupted; it resumes from its cursor")

    return broadcasts
