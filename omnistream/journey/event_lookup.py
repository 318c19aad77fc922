"""What the journey event stream reads from the loaded journeys: versions, prices, split paths.

Pure. The split path is recomputed, not remembered: the engine chooses a customer's variant at a
split step from a stable hash of (customer key, journey id, step id) (``runner.bucket``), so the
same customer always gets the same variant and no row field is needed to say which path a goal
or an exit belongs to.
"""

from __future__ import annotations

from omnistream.journey.model import Catalog, Journey, SplitStep
from omnistream.journey.runner import bucket

__all__ = ["CatalogLookup", "split_variant"]


def split_variant(journey: Journey, step: SplitStep, customer_key: str) -> str:
    """The path the engine sends ``customer_key`` on at ``step`` (as ``runner._split``)."""
    total = sum(p.weight for p in step.paths)
    point = bucket(customer_key, journey.id, step.id) % total
    for path in step.paths:
        if point < path.weight:
            return path.name
        point -= path.weight
    return step.paths[-1].name


class CatalogLookup:
    """``JourneyLookup`` over one loaded catalog (a reload builds a new one)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._splits = {
            journey.id: tuple(s for s in journey.steps if isinstance(s, SplitStep))
            for journey in catalog.journeys.values()
        }

    def version(self, journey_id: str) -> str | None:
        journey = self._catalog.journeys.get(journey_id)
        return journey.version if journey is not None else None

    def cost(self, journey_id: str, channel: str) -> tuple[float, str] | None:
        policies = self._catalog.merged_policies.get(journey_id, self._catalog.policies)
        price = policies.channel_costs.get(channel)
        return (price, policies.cost_currency) if price is not None else None

    def path(self, journey_id: str, customer_key: str) -> str | None:
        """One split step: its variant; several: ``step=variant`` joined by commas."""
        journey = self._catalog.journeys.get(journey_id)
        splits = self._splits.get(journey_id, ())
        if journey is None or not splits:
            return None
        if len(splits) == 1:
            return split_variant(journey, splits[0], customer_key)
        return ",".join(f"{s.id}={split_variant(journey, s, customer_key)}" for s in splits)
