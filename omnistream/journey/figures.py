"""A journey's figures from window cells: what ``GET /journeys/{id}/stats``, ``GET
/journeys/stats`` and the console show. Pure.

The cells come from every worker's share of the stats (``runtime/fleet.py``), summed; the
figures (counts, conversion with intervals, uplift, cost) from ``summary`` in
``domain/journey_stats.py``. The JSON routes and the console use these two functions, so they
cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from omnistream.domain.journey_stats import WINDOWS, Cells, summary
from omnistream.journey.model import Catalog

__all__ = ["WINDOW_CHOICES", "journey_figures", "overview", "valid_window"]

WINDOW_CHOICES: Final = (*WINDOWS, "version")


def valid_window(window: str) -> bool:
    return window in WINDOW_CHOICES


def journey_figures(
    catalog: Catalog, journey_id: str, cells: Cells, window: str, now: datetime
) -> dict[str, Any]:
    """One journey's figures for ``window``, from its ``cells``."""
    journey = catalog.journeys.get(journey_id)
    policies = catalog.merged_policies.get(journey_id, catalog.policies)
    return {
        "journey_id": journey_id,
        "window": window,
        "version": journey.version if journey is not None else None,
        "at": now.isoformat(),
        **summary(cells, policies.cost_currency),
    }


def overview(
    catalog: Catalog, cells: Mapping[str, Cells], window: str, now: datetime
) -> dict[str, Any]:
    """The headline row of every loaded journey (what a journeys list shows)."""
    rows = []
    for journey_id in sorted(catalog.journeys):
        figures = journey_figures(catalog, journey_id, cells.get(journey_id, {}), window, now)
        kinds, control = figures["by_kind"], figures["control"]
        rows.append(
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
    return {"window": window, "at": now.isoformat(), "journeys": rows}
