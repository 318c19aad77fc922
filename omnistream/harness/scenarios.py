"""Golden scenarios run on the harness (``omnistream journeys test`` and tests/journeys).

The scenario format and its checks are ``omnistream.journey.scenarios``; only the runner differs:
every event goes to its own key's row, so a file can hold several customers and visitors.
"""

from __future__ import annotations

from omnistream.harness.delivery import Delivery
from omnistream.harness.simulate import simulate_on_harness
from omnistream.journey.model import Catalog
from omnistream.journey.scenarios import Scenario
from omnistream.journey.simulate import Simulation

__all__ = ["run_on_harness"]


def run_on_harness(catalog: Catalog, scenario: Scenario) -> Simulation:
    """Run ``scenario`` over its journey of ``catalog`` and return the timeline and sends."""
    return simulate_on_harness(
        catalog.only(scenario.journey),
        scenario.events,
        profile=scenario.profile,
        customer_key=scenario.customer,
        until=scenario.until,
        delivery=_delivery(scenario),
    )


def _delivery(scenario: Scenario) -> Delivery | None:
    model = scenario.delivery
    return Delivery(fail=dict(model.fail), caps=model.caps) if model is not None else None
