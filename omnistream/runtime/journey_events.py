"""Producing ``omni.journey-events`` and keeping the fleet-wide journey stats from it.

**Producing.** ``publish`` maps one input's commands (and the input, if it is a send outcome) to
journey-event records (``domain/journey_events.py``) and produces them keyed by customer key.
The deliveries go into the customer batch with the send commands, so a row is written only
after its journey events were acknowledged: a crash repeats them with the same record ids.

**Stats.** An agent reads the stream in batches (up to 500 records or 0.5 s) and adds each
batch to a Faust *global* table: key ``journey \\x1f bucket \\x1f partition``, value the bucket's
cells as JSON (``domain/journey_stats.py``). Why this design:

- no re-keying: the stream stays keyed by customer (ordering per customer, what a warehouse
  wants); a journey's counts are split by source partition instead, and each partition has one
  writer at a time, so read-modify-write is safe without a repartition topic (``group_by``
  would produce every record a second time);
- a global table is read in full by every worker, so any worker answers for the whole fleet
  without routing a request: a query sums the partitions' buckets locally;
- batching makes the cost one changelog write per (journey, bucket) touched per batch, not per
  record: with a few journeys, about four writes per half second per partition.

Cost: every worker holds every bucket (one per journey, hour and partition: 30 days of a
journey at 4 partitions is 2,880 small keys), and the counts are at-least-once: a crash between
the table write and the offset commit counts the batch again (the stream's record ids let a
warehouse count exactly).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    WINDOWS,
    Cells,
    add,
    bucket_of,
    cells_in_window,
    merge,
    summary,
)
from omnistream.journey.event_lookup import CatalogLookup
from omnistream.journey.model import Catalog
from omnistream.observability.metrics import M
from omnistream.runtime.batch import in_event_context
from omnistream.runtime.delivery import Pending
from omnistream.runtime.faust_types import Event, Table

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = [
    "STATS_TABLE",
    "StatsOff",
    "UnknownWindow",
    "install",
    "journey_stats",
    "journeys_overview",
    "prune",
    "publish",
    "stats_buckets",
    "stats_table",
]

log = logging.getLogger(__name__)

STATS_TABLE: Final = "journey-stats"
BATCH_RECORDS: Final = 500
BATCH_SECONDS: Final = 0.5
SEP: Final = "\x1f"
KEEP_HOURS: Final = 31 * 24
"""Hour buckets are kept 31 days (the longest window is 30 days), then deleted."""


class UnknownWindow(ValueError):
    """A window name the stats do not keep (HTTP 400)."""


class StatsOff(LookupError):
    """The stream, and so the stats, are turned off (HTTP 404)."""


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
    """The global stats table (every worker reads all its partitions)."""
    return app.GlobalTable(
        STATS_TABLE,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        options=dict(options),
    )


def _key(journey_id: str, bucket: str, partition: int) -> bytes:
    return f"{journey_id}{SEP}{bucket}{SEP}{partition}".encode()


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
            key = _key(record.journey_id, bucket, partition)
            cells, _ = deltas.get(key, ({}, None))
            add(cells, record)
            deltas[key] = (cells, event)
    return deltas


def _apply(table: Table, deltas: dict[bytes, tuple[Cells, Event]]) -> None:
    for key, (cells, source) in deltas.items():
        raw = table.get(key)
        current: Cells = orjson.loads(raw) if raw else {}
        with in_event_context(source):  # the write goes to the source's changelog partition
            table[key] = orjson.dumps(merge(current, cells))


def install(runtime: Runtime) -> None:
    """The stats routes, and the stats agent when the stream is on."""
    _install_routes(runtime)
    topic, table = runtime.topics.journey_events, runtime.journey_stats
    if topic is None or table is None:
        return

    pruned: dict[int, int] = {}

    @runtime.app.agent(topic, name="journey-stats", concurrency=1)
    async def journey_stats_agent(stream: Any) -> None:
        async for events in stream.take_events(BATCH_RECORDS, within=BATCH_SECONDS):
            _apply(table, _deltas(events))  # acked by take_events once this body returns
            prune(table, events, utcnow(), pruned)


def prune(table: Table, events: Sequence[Event], now: datetime, pruned: dict[int, int]) -> int:
    """Delete hour buckets older than ``KEEP_HOURS`` of the batch's partitions, once an hour per
    partition (``pruned``: partition -> hour of its last pass). Returns the keys deleted."""
    hour = int(bucket_of(now)[1:])
    due = {e.message.partition: e for e in events if pruned.get(e.message.partition) != hour}
    deleted = 0
    for partition, source in due.items():
        pruned[partition] = hour
        suffix = f"{SEP}{partition}".encode()
        old = [
            key
            for key, _ in _items(table, b"")
            if key.endswith(suffix) and _hour_of(key) < hour - KEEP_HOURS
        ]
        with in_event_context(source):  # a deletion goes to the partition's changelog
            for key in old:
                del table[key]
        deleted += len(old)
    return deleted


def _hour_of(key: bytes) -> int:
    """The hour of an ``h<hour>`` bucket key; ``all`` buckets are never old."""
    bucket = key.split(SEP.encode())[1]
    return int(bucket[1:]) if bucket.startswith(b"h") else 1 << 62


def _install_routes(runtime: Runtime) -> None:
    """``GET /journeys/stats`` and ``GET /journeys/{journey_id}/stats?window=day`` on the
    internal listener (bearer token, ``runtime/web_auth.py``). Any worker answers alone: the
    table is global, so no table routing."""
    app = runtime.app

    @app.page("/journeys/stats")
    async def all_stats(web: Any, request: Any) -> Any:
        return _answer(web, lambda: journeys_overview(runtime, utcnow(), _window(request)))

    @app.page("/journeys/{journey_id}/stats")
    async def one_journey(web: Any, request: Any, journey_id: str) -> Any:
        if journey_id not in runtime.catalog.journeys:
            return web.json({"error": f"unknown journey {journey_id!r}"}, status=404)
        return _answer(web, lambda: journey_stats(runtime, journey_id, utcnow(), _window(request)))


def _window(request: Any) -> str:
    return str(request.query.get("window", "day"))


def _answer(web: Any, figures: Callable[[], dict[str, Any]]) -> Any:
    try:
        return web.json(figures())
    except UnknownWindow as exc:
        return web.json({"error": str(exc)}, status=400)
    except StatsOff as exc:
        return web.json({"error": str(exc)}, status=404)


def journeys_overview(runtime: Runtime, now: datetime, window: str = "day") -> dict[str, Any]:
    """Headline figures of every loaded journey (what a journeys list shows)."""
    out = []
    for journey_id in sorted(runtime.catalog.journeys):
        figures = journey_stats(runtime, journey_id, now, window)
        kinds, control = figures["by_kind"], figures["control"]
        out.append(
            {
                "journey_id": journey_id,
                "version": figures["version"],
                "entered": kinds.get("entered", 0),
                "goals": kinds.get("goal", 0),
                "exited": kinds.get("exited", 0),
                "sends": kinds.get("send", 0),
                "conversion": control["treatment"]["rate"],
                "uplift": control["uplift"],
                "cost": figures["cost"]["total"],
                "currency": figures["cost"]["currency"],
            }
        )
    return {"window": window, "at": now.isoformat(), "journeys": out}


def stats_buckets(table: Table, journey_id: str) -> dict[str, Cells]:
    """The journey's buckets summed over partitions (every worker holds them all)."""
    prefix = f"{journey_id}{SEP}".encode()
    out: dict[str, Cells] = {}
    for key, raw in _items(table, prefix):
        bucket = key.decode().split(SEP)[1]
        merge(out.setdefault(bucket, {}), orjson.loads(raw))
    return out


def _items(table: Table, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    for key, raw in table.items():
        if key.startswith(prefix) and raw:
            yield key, raw


def journey_stats(
    runtime: Runtime, journey_id: str, now: datetime, window: str = "day"
) -> dict[str, Any]:
    """One journey's figures for a window (``WINDOWS`` names or ``version``: since the
    journey's current version), as a JSON-able dict for an API or a console."""
    if window not in WINDOWS and window != "version":
        raise UnknownWindow(f"unknown window {window!r}; one of {', '.join([*WINDOWS, 'version'])}")
    table = runtime.journey_stats
    if table is None:
        raise StatsOff("journey stats are off (OMNISTREAM_JOURNEY_EVENTS=false)")
    journey = runtime.catalog.journeys.get(journey_id)
    version = journey.version if journey is not None else None
    buckets = stats_buckets(table, journey_id)
    cells = cells_in_window(buckets, now, window, version)
    policies = runtime.catalog.merged_policies.get(journey_id, runtime.catalog.policies)
    return {
        "journey_id": journey_id,
        "window": window,
        "version": version,
        "at": now.isoformat(),
        **summary(cells, policies.cost_currency),
    }
