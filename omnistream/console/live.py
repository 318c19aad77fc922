"""Fleet-wide figures: this worker's share plus every other worker's, over HTTP.

Two kinds of figures are partitioned across the workers:

- **live instances** (who waits on which step now) are in the customer rows, held by the owner
  of each customers partition;
- **journey stats**: the stats table is a Faust *global* table, meant to hold every partition's
  buckets on every worker, but with several workers a worker's copy does not follow the other
  workers' writes after its start (measured here with two workers: each one's
  ``GET /journeys/{id}/stats`` counted only its own partitions' customers; faust-streaming
  issue #283, "GlobalTable not working when using multiple instances", is open). Each
  partition's buckets are exact on the worker that owns the journey-events partition, since it
  is their only writer.

So each worker answers ``/console/api/live?window=W`` with what it is the authority for (its
customers partitions' rows, and the window's stats cells of the journey-events partitions it
actively owns), and the console merges the answers of all workers Faust's assignor lists. One
worker owning everything (a single worker) is the same as the stats route. A worker that does
not answer within ``PEER_TIMEOUT_S`` is named on the page, and partitions nobody answered for
are listed, instead of failing the page or silently showing less.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import orjson

from omnistream.console import live_figures
from omnistream.console.forward import same_worker
from omnistream.domain.journey_stats import SEP, Cells, cells_in_window, merge
from omnistream.runtime.partitions import partition_of

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["LIVE_PATH", "fleet_figures", "local_figures", "peers"]

log = logging.getLogger(__name__)

LIVE_PATH: Final = "/console/api/live"
PEER_TIMEOUT_S: Final = 5.0
CUSTOMERS_TABLE: Final = "customers"


def _stats_partitions(runtime: Runtime) -> set[int]:
    """The journey-events partitions this worker actively owns (writes the stats of)."""
    assignor = runtime.app.assignor
    topic = runtime.settings.journey_events_topic
    return {tp.partition for tp in assignor.assigned_actives() if tp.topic == topic}


def local_cells(runtime: Runtime, window: str, now: datetime) -> tuple[dict[str, Cells], set[int]]:
    """Window cells per journey from this worker's own stats partitions, and those partitions."""
    table = runtime.journey_stats
    if table is None:
        return {}, set()
    owned = _stats_partitions(runtime)
    buckets: dict[str, dict[str, Cells]] = {}
    for key, raw in table.items():
        journey_id, bucket, partition = key.decode().split(SEP)
        if raw and int(partition) in owned:
            merge(buckets.setdefault(journey_id, {}).setdefault(bucket, {}), orjson.loads(raw))
    cells = {}
    for journey_id, by_bucket in buckets.items():
        journey = runtime.catalog.journeys.get(journey_id)
        version = journey.version if journey is not None else None
        cells[journey_id] = cells_in_window(by_bucket, now, window, version)
    return cells, owned


def local_figures(runtime: Runtime, window: str, now: datetime) -> dict[str, Any]:
    """This worker's share: live rows of its customers partitions, stats of its partitions."""
    owned = runtime.owned.owned
    partitions = runtime.settings.partitions
    rows = (
        (key, raw)
        for key, raw in runtime.customers.data.items()
        if raw and partition_of(key, partitions) in owned
    )
    figures = live_figures.scan(rows)
    cells, stats_partitions = local_cells(runtime, window, now)
    figures.update(cells=cells, stats_partitions=sorted(stats_partitions))
    return figures


def peers(runtime: Runtime) -> list[str]:
    """Canonical URLs of the other workers that own customers partitions now."""
    try:
        hosts = runtime.app.router.table_metadata(CUSTOMERS_TABLE)
    except (KeyError, AttributeError):  # before the first assignment
        return []
    return sorted(host for host in hosts if not same_worker(runtime, host))


async def _ask(
    session: aiohttp.ClientSession, host: str, token: str, window: str
) -> dict[str, Any]:
    async with session.get(
        f"{host.rstrip('/')}{LIVE_PATH}",
        params={"window": window},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        response.raise_for_status()
        answer: dict[str, Any] = await response.json()
        return answer


async def _peer_answers(runtime: Runtime, window: str) -> tuple[list[dict[str, Any]], list[str]]:
    others = peers(runtime)
    tokens = runtime.settings.internal_tokens
    if not others or not tokens:
        return [], others
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        token = tokens[0].get_secret_value()
        answers = await asyncio.gather(
            *(_ask(session, host, token, window) for host in others), return_exceptions=True
        )
    parts, errors = [], []
    for host, answer in zip(others, answers, strict=True):
        if isinstance(answer, BaseException):
            log.warning("console: figures from %s failed: %r", host, answer)
            errors.append(host)
        else:
            parts.append(answer)
    return parts, errors


async def fleet_figures(runtime: Runtime, window: str, now: datetime) -> dict[str, Any]:
    """Every worker's share merged: ``journeys`` (live), ``cells`` (stats per journey),
    ``asked`` / ``answered`` / ``errors`` (workers) and ``missing_partitions`` (stats)."""
    parts, errors = await _peer_answers(runtime, window)
    parts.insert(0, local_figures(runtime, window, now))
    merged = live_figures.merge(parts)
    cells: dict[str, Cells] = {}
    covered: set[int] = set()
    for part in parts:
        covered.update(part.get("stats_partitions", ()))
        for journey_id, journey_cells in part.get("cells", {}).items():
            merge(cells.setdefault(journey_id, {"n": {}, "c": {}}), journey_cells)
    expected = (
        set(range(runtime.settings.partitions)) if runtime.journey_stats is not None else set()
    )
    merged.update(
        cells=cells,
        asked=len(parts) + len(errors),
        answered=len(parts),
        errors=errors,
        missing_partitions=sorted(expected - covered),
    )
    return merged
