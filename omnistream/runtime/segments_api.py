"""``GET /segments/{name}/count``: how many customers of this worker's partitions are in a segment.

The audience estimate behind ``omnistream segments count NAME`` (``ops/segments_cli.py``). A
segment is a condition over the profile (journeys/segments.yaml), compiled with the worker's
own catalog, so the answer is what this worker's journeys would see. Each worker counts only
the rows of the ``omni.customer-events`` partitions it owns as active and says which ones, per
partition: the CLI asks every worker, sums, and shows which partitions answered, so a worker
that is down or rebalancing is visible instead of silently under-counting.

Internal listener only, behind the bearer token (``runtime/web_auth.py`` runs before this view).
No table routing: every worker answers for itself. The walk reads a snapshot of the table's
keys and yields to the event loop every ``CHUNK`` rows (a row decode and a profile view cost
~100-300 us, so 1,000 rows hold the loop for well under a second and the consumer's heartbeats
go on). A rebalance during the walk makes the answer 503: the partitions it started with may
no longer be this worker's, and a count of them could be counted again by the new owner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from omnistream.clock import monotonic, utcnow
from omnistream.domain.state import CustomerState
from omnistream.runtime.broadcasts import keys_by_partition

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["CHUNK", "ROUTE", "PartitionCounts", "count_rows", "install"]

ROUTE: Final = "/segments/{name}/count"
CHUNK: Final = 1000
"""Rows judged between two yields to the event loop."""

Condition = Callable[[Mapping[str, Any]], Any]


@dataclass
class PartitionCounts:
    """Per partition: the rows in the segment; plus the rows read and the unreadable ones."""

    matched: dict[int, int] = field(default_factory=dict)
    rows: int = 0
    unreadable: int = 0


async def count_rows(
    data: Mapping[bytes, bytes],
    by_partition: Mapping[int, Sequence[bytes]],
    condition: Condition,
    now: datetime,
    still_valid: Callable[[], bool] = lambda: True,
) -> PartitionCounts | None:
    """Count the rows of each partition that are in the segment; None if ``still_valid``
    turns false (a rebalance) between two chunks.

    A key gone since the snapshot (merged, erased) is skipped; a row that does not decode is
    counted as ``unreadable``, never as in or out silently.
    """
    counts = PartitionCounts()
    for partition, keys in sorted(by_partition.items()):
        matched = 0
        for start in range(0, len(keys), CHUNK):
            for key in keys[start : start + CHUNK]:
                raw = data.get(key)
                if not raw:
                    continue
                counts.rows += 1
                try:
                    state = CustomerState.from_bytes(raw)
                except (ValidationError, ValueError):
                    counts.unreadable += 1
                    continue
                profile = state.profile.model_dump(mode="json")
                matched += bool(condition({"profile": profile, "now": now}))
            await asyncio.sleep(0)
            if not still_valid():
                return None
        counts.matched[partition] = matched
    return counts


def _busy(runtime: Runtime) -> bool:
    app = runtime.app
    return bool(getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False))


async def segment_count(runtime: Runtime, name: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of one count on this worker."""
    segments = runtime.catalog.targeting.segments
    condition = segments.get(name)
    if condition is None:
        return 404, {"error": f"unknown segment {name!r}", "segments": sorted(segments)}
    if _busy(runtime):
        return 503, {"error": "rebalancing or recovering: ask again in a few seconds"}
    started = monotonic()
    owned = runtime.owned.owned
    partitions = runtime.settings.partitions
    data: Mapping[bytes, bytes] = runtime.customers.data
    by_partition = await keys_by_partition(list(data.keys()), owned, partitions)

    def still_valid() -> bool:
        return runtime.owned.owned == owned and not _busy(runtime)

    counts = await count_rows(data, by_partition, condition, utcnow(), still_valid)
    if counts is None or not still_valid():
        return 503, {"error": "a rebalance happened during the count: ask again"}
    return 200, {
        "segment": name,
        "partitions": {str(p): n for p, n in sorted(counts.matched.items())},
        "partition_count": partitions,
        "rows": counts.rows,
        "unreadable": counts.unreadable,
        "elapsed_s": round(monotonic() - started, 3),
    }


def install(runtime: Runtime) -> None:
    """The count route on the internal listener (the token middleware guards it)."""

    @runtime.app.page(ROUTE)
    async def count_view(web: Any, request: Any, name: str) -> Any:
        status, body = await segment_count(runtime, name)
        return web.json(body, status=status)
