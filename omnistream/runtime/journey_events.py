"""Producing ``omni.journey-events`` and keeping the fleet-wide journey stats from it.

**Producing.** ``publish`` maps one input's commands (and the input, if it is a send outcome) to
journey-event records (``domain/journey_events.py``) and produces them keyed by customer key.
The deliveries go into the customer batch with the send commands, so a row is written only
after its journey events were acknowledged: a crash repeats them with the same record ids.

**Stats.** An agent reads the stream in batches (up to 500 records or 0.5 s) and adds each
batch to a Faust table partitioned like the stream: key ``journey \x1f bucket \x1f partition``,
value the bucket's cells as JSON (``domain/journey_stats.py``). Why this design:

- no re-keying: the stream stays keyed by customer (ordering per customer, what a warehouse
  wants); a journey's counts are split by source partition instead, and each partition has one
  writer at a time, so read-modify-write is safe without a repartition topic (``group_by``
  would produce every record a second time);
- the owner of events partition i owns stats partition i (Faust co-partitions topics of the same
  partition count) and recovers it from the changelog when it moves; a query asks every worker
  for the partitions it owns and sums them (``runtime/fleet.py``). It was a global table: a
  worker's copy of one does not follow the other workers' writes (faust #283);
- batching makes the cost one changelog write per (journey, bucket) touched per batch, not per
  record: with a few journeys, about four writes per half second per partition.

**Each record is counted once**, although the stream's offsets are committed after the table
writes (at-least-once): the table also keeps, per partition, the next stream offset not counted
yet (``counted_key``), written after the batch's buckets to the same changelog partition. A
batch read again (a partition moved before its offsets were committed, or a crash) skips what
the table already holds, and so is a record Faust hands to a batch twice (around a rebalance,
one batch held offsets 58-62 and then 58-63 of a partition). Without it, partitions moving
w0 -> w1 -> w0 counted 39-45 entries for 36 (tests/integration/test_journey_events.py). A
crash between a batch's bucket writes and its mark can still count that batch twice (the
stream's record ids let a warehouse count exactly).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from pydantic import ValidationError

from omnistream.clock import utcnow
from omnistream.config import Settings
from omnistream.domain.commands import Command
from omnistream.domain.journey_events import Cause, JourneyEvent, journey_events
from omnistream.domain.journey_stats import (
    ALL,
    Cells,
    add,
    bucket_of,
    counted_key,
    merge,
    parse_stats_key,
    stats_key,
)
from omnistream.journey.event_lookup import CatalogLookup
from omnistream.journey.figures import WINDOW_CHOICES, journey_figures, overview, valid_window
from omnistream.journey.model import Catalog
from omnistream.observability.metrics import M
from omnistream.runtime.batch import in_event_context
from omnistream.runtime.delivery import Pending
from omnistream.runtime.faust_types import Event, Table
from omnistream.runtime.fleet import fleet_stats, stats_partitions
from omnistream.runtime.fleet import install as install_fleet

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = [
    "STATS_TABLE",
    "count_batch",
    "install",
    "prune",
    "publish",
    "stats_buckets",
    "stats_table",
]

log = logging.getLogger(__name__)

STATS_TABLE: Final = "journey-stats"
BATCH_RECORDS: Final = 500
BATCH_SECONDS: Final = 0.5
KEEP_HOURS: Final = 31 * 24
"""Hour buckets are kept 31 days (the longest window is 30 days), then deleted."""


_lookups: dict[int, tuple[Catalog, CatalogLookup]] = {}


def _lookup(catalog: Catalog) -> CatalogLookup:
    """One lookup per loaded catalog (a hot reload swaps the catalog)."""
    cached = _lookups.get(id(catalog))
    if cached is None or cached[0] is not catalog:
        _lookups.clear()
        cached = _lookups[id(catalog)] = (catalog, CatalogLookup(catalog))
    return cached[1]


async def publish(runtime: Runtime, commands: Sequence[Command], cause: Cause | None) -> Pending:
    """Produce the journey events of one input; their deliveries, for the batch to await."""
    if cause is None:  # merges and erasure: no input event (see docs/journey-events.md)
        return []
    topic = runtime.topics.journey_events
    if topic is None:
        return []
    pending: Pending = []
    for record in journey_events(commands, cause, _lookup(runtime.catalog)):
        M.journey_events.labels(record.kind).inc()
        pending.append(await topic.send(key=record.customer_key.encode(), value=record.to_json()))
    return pending


def stats_table(app: Any, settings: Settings, options: Mapping[str, int]) -> Any:
    """The stats table: partitioned like ``omni.journey-events`` (Faust co-partitions topics
    of the same partition count, so the owner of events partition i owns stats partition i and
    recovers it from the changelog when it moves). Not a global table: a worker's copy of one
    does not follow the other workers' writes (faust #283), so after a partition moved back its
    new owner counted on from a stale value (tests/integration/test_journey_events.py)."""
    return app.Table(
        STATS_TABLE,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        options=dict(options),
    )


def count_batch(table: Table, events: Sequence[Event]) -> int:
    """Add the batch's records the table has not counted yet; how many were new. Each
    partition's counted offset moves past the batch after its buckets were written."""
    fresh = _not_counted(table, events)
    _apply(table, _deltas(fresh))
    last: dict[int, Event] = {}
    for event in fresh:
        last[event.message.partition] = event
    for partition, event in last.items():
        with in_event_context(event):
            table[counted_key(partition)] = str(event.message.offset + 1).encode()
    return len(fresh)


def _not_counted(table: Table, events: Sequence[Event]) -> list[Event]:
    """The events past their partition's counted offset, each offset once: around a rebalance
    Faust hands the same records to one batch twice (offsets 58-62, then 58-63, measured)."""
    upto: dict[int, int] = {}
    fresh = []
    for event in events:
        partition, offset = event.message.partition, event.message.offset
        if partition not in upto:
            with in_event_context(event):  # the partition's RocksDB database
                upto[partition] = int(table.get(counted_key(partition)) or 0)
        if offset >= upto[partition]:
            fresh.append(event)
            upto[partition] = offset + 1
    return fresh


def _deltas(events: Sequence[Event]) -> dict[bytes, tuple[Cells, Event]]:
    """Table key -> (cells to add, an input of the key's partition) for one batch."""
    deltas: dict[bytes, tuple[Cells, Event]] = {}
    for event in events:
        try:
            record = JourneyEvent.model_validate_json(event.message.value or b"")
        except ValidationError:
            M.journey_stats_skipped.inc()
            continue
        if record.journey_id is None:
            continue
        partition = event.message.partition
        for bucket in (bucket_of(record.at), ALL):
            key = stats_key(record.journey_id, bucket, partition)
            cells, _ = deltas.get(key, ({}, None))
            add(cells, record)
            deltas[key] = (cells, event)
    return deltas


def _apply(table: Table, deltas: dict[bytes, tuple[Cells, Event]]) -> None:
    for key, (cells, source) in deltas.items():
        # In the source's context: the read and the write go to its partition (RocksDB keeps
        # one database per partition; the changelog record goes to the same partition).
        with in_event_context(source):
            raw = table.get(key)
            current: Cells = orjson.loads(raw) if raw else {}
            table[key] = orjson.dumps(merge(current, cells))


def install(runtime: Runtime) -> None:
    """The stats routes (and every worker's share of them), and the stats agent when the
    stream is on."""
    _install_routes(runtime)
    install_fleet(runtime)
    topic, table = runtime.topics.journey_events, runtime.journey_stats
    if topic is None or table is None:
        return

    pruned: dict[int, int] = {}

    @runtime.app.agent(topic, name="journey-stats", concurrency=1)
    async def journey_stats_agent(stream: Any) -> None:
        async for events in stream.take_events(BATCH_RECORDS, within=BATCH_SECONDS):
            owned = stats_partitions(runtime)
            # A batch taken before a rebalance may hold records of partitions revoked since:
            # their offsets will not be committed here, so their new owner counts them.
            mine = [e for e in events if e.message.partition in owned]
            count_batch(table, mine)  # acked by take_events once this body returns
            prune(table, mine, utcnow(), pruned)


def prune(table: Table, events: Sequence[Event], now: datetime, pruned: dict[int, int]) -> int:
    """Delete hour buckets older than ``KEEP_HOURS`` of the batch's partitions, once an hour per
    partition (``pruned``: partition -> hour of its last pass). Returns the keys deleted."""
    hour = int(bucket_of(now)[1:])
    due = {e.message.partition: e for e in events if pruned.get(e.message.partition) != hour}
    deleted = 0
    for partition, source in due.items():
        pruned[partition] = hour
        old = [
            key
            for key, _ in table.items()
            if (parsed := parse_stats_key(key)) is not None
            and parsed[2] == partition
            and _hour_of(parsed[1]) < hour - KEEP_HOURS
        ]
        with in_event_context(source):  # a deletion goes to the partition's changelog
            for key in old:
                del table[key]
        deleted += len(old)
    return deleted


def _hour_of(bucket: str) -> int:
    """The hour of an ``h<hour>`` bucket; ``all`` buckets are never old."""
    return int(bucket[1:]) if bucket.startswith("h") else 1 << 62


def _install_routes(runtime: Runtime) -> None:
    """``GET /journeys/stats`` and ``GET /journeys/{journey_id}/stats?window=day`` on the
    internal listener (bearer token, ``runtime/web_auth.py``). Any worker answers for the whole
    fleet: it sums every worker's share (``runtime/fleet.py``) and says which partitions were
    answered for (``partitions_answered`` / ``partitions_missing``, ``workers_failed``)."""
    app = runtime.app

    @app.page("/journeys/stats")
    async def all_stats(web: Any, request: Any) -> Any:
        window, refused = _check(web, runtime, request)
        if refused is not None:
            return refused
        now = utcnow()
        stats = await fleet_stats(runtime, window, now)
        return web.json({**overview(runtime.catalog, stats.cells, window, now), **stats.coverage()})

    @app.page("/journeys/{journey_id}/stats")
    async def one_journey(web: Any, request: Any, journey_id: str) -> Any:
        if journey_id not in runtime.catalog.journeys:
            return web.json({"error": f"unknown journey {journey_id!r}"}, status=404)
        window, refused = _check(web, runtime, request)
        if refused is not None:
            return refused
        now = utcnow()
        stats = await fleet_stats(runtime, window, now)
        cells = stats.cells.get(journey_id, {})
        figures = journey_figures(runtime.catalog, journey_id, cells, window, now)
        return web.json({**figures, **stats.coverage()})


def _check(web: Any, runtime: Runtime, request: Any) -> tuple[str, Any]:
    """The request's window, or the refusal: 400 for an unknown window, 404 with stats off."""
    window = str(request.query.get("window", "day"))
    if not valid_window(window):
        choices = ", ".join(WINDOW_CHOICES)
        return window, web.json(
            {"error": f"unknown window {window!r}; one of {choices}"}, status=400
        )
    if runtime.journey_stats is None:
        error = "journey stats are off (OMNISTREAM_JOURNEY_EVENTS=false)"
        return window, web.json({"error": error}, status=404)
    return window, None


def stats_buckets(table: Table, journey_id: str) -> dict[str, Cells]:
    """The journey's buckets summed over the partitions this table holds (a worker holds only
    its own and its standbys'; the fleet-wide sum is ``runtime/fleet.py``'s)."""
    out: dict[str, Cells] = {}
    for key, raw in table.items():
        parsed = parse_stats_key(key)
        if raw and parsed is not None and parsed[0] == journey_id:
            merge(out.setdefault(parsed[1], {}), orjson.loads(raw))
    return out
