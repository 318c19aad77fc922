"""Fleet-wide answers: this worker's share plus every other worker's, over the internal listener.

The journey stats are partitioned like ``omni.journey-events``: each worker holds the stats
partitions of the events partitions it owns (it was a global table, but a worker's copy of one
does not follow the other workers' writes: faust-streaming issue #283, measured with two
workers, each counted only its own partitions' customers).

So a fleet-wide figure is asked of every worker: each answers ``GET /fleet/journey-stats`` with
the window's cells of the journey-events partitions it actively owns (``stats_share``), and the
asking worker sums them (``fleet_stats``). The answer says which partitions were answered for
and which were not (a worker that did not answer within ``PEER_TIMEOUT_S``, or a rebalance in
progress), instead of silently showing less. The workers are the hosts Faust's assignor lists
for the customers table; one worker owning everything is the same as its own share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import orjson
from yarl import URL

from omnistream.clock import utcnow
from omnistream.domain.journey_stats import Cells, cells_in_window, merge, parse_stats_key
from omnistream.journey.figures import valid_window

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = [
    "PEER_TIMEOUT_S",
    "STATS_SHARE_PATH",
    "FleetStats",
    "ask_peers",
    "fleet_stats",
    "install",
    "local_cells",
    "merge_shares",
    "peers",
    "same_worker",
    "stats_partitions",
    "stats_share",
]

log = logging.getLogger(__name__)

STATS_SHARE_PATH: Final = "/fleet/journey-stats"
PEER_TIMEOUT_S: Final = 5.0
CUSTOMERS_TABLE: Final = "customers"


def _ident(url: str | URL) -> tuple[str, int]:
    parsed = URL(str(url))
    return (parsed.host or "", parsed.port or 80)


def same_worker(runtime: Runtime, url: str | URL) -> bool:
    """Is ``url`` this worker's canonical URL (the one the assignor advertises)?"""
    return _ident(url) == _ident(runtime.settings.web_url())


def peers(runtime: Runtime) -> list[str]:
    """Canonical URLs of the other workers that own customers partitions now."""
    try:
        hosts = runtime.app.router.table_metadata(CUSTOMERS_TABLE)
    except (KeyError, AttributeError):  # before the first assignment
        return []
    return sorted(host for host in hosts if not same_worker(runtime, host))


async def _ask(
    session: aiohttp.ClientSession, url: str, token: str, params: Mapping[str, str]
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(url, params=dict(params), headers=headers) as response:
        response.raise_for_status()
        answer: dict[str, Any] = await response.json()
        return answer


async def ask_peers(
    runtime: Runtime, path: str, params: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """GET ``path`` on every other worker at once, with this worker's internal token: the JSON
    answers, and the workers that failed or did not answer in ``PEER_TIMEOUT_S``."""
    others = peers(runtime)
    tokens = runtime.settings.internal_tokens
    if not others or not tokens:
        return [], others
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
    token = tokens[0].get_secret_value()
    async with aiohttp.ClientSession(timeout=timeout) as session:
        answers = await asyncio.gather(
            *(_ask(session, f"{host.rstrip('/')}{path}", token, params) for host in others),
            return_exceptions=True,
        )
    parts, errors = [], []
    for host, answer in zip(others, answers, strict=True):
        if isinstance(answer, BaseException):
            log.warning("fleet: %s from %s failed: %r", path, host, answer)
            errors.append(host)
        else:
            parts.append(answer)
    return parts, errors


def stats_partitions(runtime: Runtime) -> set[int]:
    """The stats partitions this worker actively owns (writes the stats of): its customer
    partitions (``runtime/journey_events.py``)."""
    return set(runtime.owned.owned)


def local_cells(runtime: Runtime, window: str, now: datetime) -> tuple[dict[str, Cells], set[int]]:
    """Window cells per journey from this worker's own stats partitions, and those partitions."""
    table = runtime.journey_stats
    if table is None:
        return {}, set()
    owned = stats_partitions(runtime)
    buckets: dict[str, dict[str, Cells]] = {}
    for key, raw in table.items():
        parsed = parse_stats_key(key)  # None: a partition's counted offset
        if parsed is not None and raw and parsed[2] in owned:
            journey_id, bucket, _ = parsed
            merge(buckets.setdefault(journey_id, {}).setdefault(bucket, {}), orjson.loads(raw))
    cells = {}
    for journey_id, by_bucket in buckets.items():
        journey = runtime.catalog.journeys.get(journey_id)
        version = journey.version if journey is not None else None
        cells[journey_id] = cells_in_window(by_bucket, now, window, version)
    return cells, owned


def stats_share(runtime: Runtime, window: str, now: datetime) -> dict[str, Any]:
    """This worker's share of the stats: ``cells`` per journey and ``stats_partitions``."""
    cells, owned = local_cells(runtime, window, now)
    return {"cells": cells, "stats_partitions": sorted(owned)}


@dataclass
class FleetStats:
    """The stats cells of every worker that answered, summed, and what they covered."""

    cells: dict[str, Cells] = field(default_factory=dict)
    partitions_answered: list[int] = field(default_factory=list)
    partitions_missing: list[int] = field(default_factory=list)
    workers_failed: list[str] = field(default_factory=list)

    def coverage(self) -> dict[str, Any]:
        """What a JSON answer adds so a reader knows whether it is the whole fleet's."""
        return {
            "partitions_answered": self.partitions_answered,
            "partitions_missing": self.partitions_missing,
            "workers_failed": self.workers_failed,
        }


def merge_shares(shares: Sequence[Mapping[str, Any]], partitions: int) -> FleetStats:
    """Sum the shares. A share that overlaps one already taken (a rebalance between the two
    answers) is left out whole, since its cells cannot be split by partition: its other
    partitions then show as missing rather than counted twice."""
    out = FleetStats()
    covered: set[int] = set()
    for share in shares:
        theirs = set(share.get("stats_partitions", ()))
        if theirs & covered:
            log.warning("fleet: a share overlaps partitions %s; left out", sorted(theirs & covered))
            continue
        covered |= theirs
        for journey_id, journey_cells in share.get("cells", {}).items():
            merge(out.cells.setdefault(journey_id, {"n": {}, "c": {}}), journey_cells)
    out.partitions_answered = sorted(covered)
    out.partitions_missing = sorted(set(range(partitions)) - covered)
    return out


async def fleet_stats(runtime: Runtime, window: str, now: datetime) -> FleetStats:
    """Every worker's share of the window's stats, summed (this worker's included)."""
    others, failed = await ask_peers(runtime, STATS_SHARE_PATH, {"window": window})
    result = merge_shares([stats_share(runtime, window, now), *others], runtime.settings.partitions)
    result.workers_failed = failed
    return result


def install(runtime: Runtime) -> None:
    """``GET /fleet/journey-stats?window=W`` on the internal listener (bearer token)."""

    @runtime.app.page(STATS_SHARE_PATH)
    async def share(web: Any, request: Any) -> Any:
        window = str(request.query.get("window", "day"))
        if not valid_window(window):
            return web.json({"error": f"unknown window {window!r}"}, status=400)
        return web.json(stats_share(runtime, window, utcnow()))
