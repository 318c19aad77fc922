"""Fleet-wide console figures: this worker's share plus every other worker's, over HTTP.

Two kinds of figures are partitioned across the workers:

- **live instances** (who waits on which step now) are in the customer rows, held by the owner
  of each customers partition;
- **journey stats**: exact only on the owner of each journey-events partition
  (``runtime/fleet.py`` says why the "global" stats table has to be asked this way too).

So each worker answers ``/console/api/live?window=W`` with what it is the authority for (its
customers partitions' rows, and its share of the stats, ``fleet.stats_share``), and the console
merges the answers of all workers Faust's assignor lists (``fleet.ask_peers``; the stats with
``fleet.merge_shares``, as the JSON stats routes do). A worker that does not answer within
``fleet.PEER_TIMEOUT_S`` is named on the page, and partitions nobody answered for are listed,
instead of failing the page or silently showing less.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from omnistream.console import live_figures
from omnistream.runtime.fleet import ask_peers, merge_shares, stats_share
from omnistream.runtime.partitions import partition_of

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["LIVE_PATH", "fleet_figures", "local_figures"]

LIVE_PATH: Final = "/console/api/live"


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
    figures.update(stats_share(runtime, window, now))
    return figures


async def fleet_figures(runtime: Runtime, window: str, now: datetime) -> dict[str, Any]:
    """Every worker's share merged: ``journeys`` (live), ``cells`` (stats per journey),
    ``asked`` / ``answered`` / ``errors`` (workers) and ``missing_partitions`` (stats)."""
    parts, errors = await ask_peers(runtime, LIVE_PATH, {"window": window})
    parts.insert(0, local_figures(runtime, window, now))
    merged = live_figures.merge(parts)
    stats = merge_shares(parts, runtime.settings.partitions)
    merged.update(
        cells=stats.cells,
        asked=len(parts) + len(errors),
        answered=len(parts),
        errors=errors,
        missing_partitions=stats.partitions_missing if runtime.journey_stats is not None else [],
    )
    return merged
