"""Producing ``omni.journey-events`` and counting the fleet-wide journey stats as it is produced.

**Producing.** ``records`` maps one input's commands (and the input, if it is a send outcome)
to journey-event records (``domain/journey_events.py``); ``publish`` produces them keyed by
customer key. The deliveries go into the customer batch with the send commands, so a row is
written only after its journey events were acknowledged: a crash repeats them with the same
record ids.

**Stats.** The customer batch counts the records of its inputs as they are produced
(``StatsDeltas``) and adds them to a Faust table at its flush, with the rows, before it acks its
inputs: key ``journey \x1f bucket \x1f partition``, value the bucket's cells as JSON
(``domain/journey_stats.py``), the partition being the input's, i.e. the customer's. Why:

- **counted once, as the rows record inputs once**: an input's records are counted in the
  flush that writes the row recording the input. An input handled again after a crash or a
  rebalance is either new to its row (its first handling was never flushed, so nothing of it
  was counted) or a repeat the engine drops (no commands, no records, nothing counted). Left:
  a kill -9 between a flush's stats writes and its row writes counts that batch twice (the
  stream's record ids let a warehouse count exactly);
- **no second read of the stream**: an agent used to read ``omni.journey-events`` back and
  count it, a consume per record (the stream cost about a third of the worker's CPU per event,
  docs/performance.md);
- **no re-keying**: a journey's counts are split by customer partition; each partition has
  one writer at a time (its owner's customer agent), so read-modify-write is safe;
- the owner of customer partition i owns stats partition i (Faust assigns tables and topics of
  the same partition count together) and recovers it from the changelog when it moves; a query
  asks every worker for the partitions it owns and sums them (``runtime/fleet.py``). It was a
  global table: a worker's copy of one does not follow the other workers' writes (faust #283);
- one changelog write per (journey, bucket, partition) touched per batch, not per record.

Tables written by the earlier design also hold a per-partition counted-offset key
(``\x00counted``): not a bucket, ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from omnistream.clock import utcnow
from omnistream.config import Settings
from omnistream.domain.commands import Command
from omnistream.domain.journey_events import Cause, JourneyEvent, journey_events
from omnistream.domain.journey_stats import (
    ALL,
    Cells,
    add,
    bucket_of,
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
from omnistream.runtime.fleet import fleet_stats
from omnistream.runtime.fleet import install as install_fleet
from omnistream.runtime.topics_declared import declare_at_first_assignment

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = [
    "STATS_TABLE",
    "StatsDeltas",
    "install",
    "prune",
    "publish",
    "records",
    "stats_buckets",
    "stats_table",
]

log = logging.getLogger(__name__)

STATS_TABLE: Final = "journey-stats"
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


def records(
    runtime: Runtime, commands: Sequence[Command], cause: Cause | None
) -> list[JourneyEvent]:
    """The journey events of one input: none with the stream off, nor for merges and erasure,
    which have no input event (see docs/journey-events.md)."""
    if cause is None or runtime.topics.journey_events is None:
        return []
    return journey_events(commands, cause, _lookup(runtime.catalog))


async def publish(runtime: Runtime, produced: Sequence[JourneyEvent]) -> Pending:
    """Produce the records; their deliveries, for the batch to await."""
    if not produced:
        return []
    topic = runtime.topics.journey_events
    if topic is None:
        return []
    pending: Pending = []
    for record in produced:
        M.journey_events.labels(record.kind).inc()
        pending.append(await topic.send(key=record.customer_key.encode(), value=record.to_json()))
    return pending


class StatsDeltas:
    """What a customer batch adds to the stats table at its flush (see the module docstring)."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self._deltas: dict[bytes, tuple[Cells, Event]] = {}
        self._pruned: dict[int, int] = {}

    def add(self, produced: Sequence[JourneyEvent], source: Event) -> None:
        """Count ``produced``, the records of the input ``source`` (a Faust event in the
        customer's partition, the table partition the counts go to)."""
        partition = source.message.partition
        for record in produced:
            if record.journey_id is None:
                continue
            for bucket in (bucket_of(record.at), ALL):
                key = stats_key(record.journey_id, bucket, partition)
                cells, _ = self._deltas.get(key, ({}, source))
                add(cells, record)
                self._deltas[key] = (cells, source)

    def write(self, now: datetime) -> None:
        """Add the counts to the table, prune old hours of their partitions (once an hour
        each), and start over. A flush whose inputs produced no journey event (most of them)
        does nothing here."""
        if not self._deltas:
            return
        deltas, self._deltas = self._deltas, {}
        _apply(self._table, deltas)
        prune(self._table, [source for _, source in deltas.values()], now, self._pruned)


def stats_table(app: Any, settings: Settings, options: Mapping[str, int]) -> Any:
    """The stats table: partitioned like ``omni.customer-events`` (Faust assigns tables and
    topics of the same partition count together, so the owner of customer partition i owns
    stats partition i and recovers it from the changelog when it moves). Not a global table:
    a worker's copy of one does not follow the other workers' writes (faust #283), so after a
    partition moved back its new owner counted on from a stale value
    (tests/integration/test_journey_events.py)."""
    return app.Table(
        STATS_TABLE,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        options=dict(options),
    )


def _apply(table: Table, deltas: dict[bytes, tuple[Cells, Event]]) -> None:
    for key, (cells, source) in deltas.items():
        # In the source's context: the read and the write go to its partition (RocksDB keeps
        # one database per partition; the changelog record goes to the same partition).
        with in_event_context(source):
            raw = table.get(key)
            current: Cells = orjson.loads(raw) if raw else {}
            table[key] = orjson.dumps(merge(current, cells))


def install(runtime: Runtime) -> None:
    """The stats routes (and every worker's share of them); with the stream on, its topic is
    declared at the first assignment (no agent here reads it, and Faust declares only the
    topics its agents read)."""
    _install_routes(runtime)
    install_fleet(runtime)
    if runtime.topics.journey_events is not None:
        declare_at_first_assignment(runtime, runtime.topics.journey_events)


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
