"""The golden scenarios on the harness: same timeline as the pure simulator, same expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnistream.harness.scenarios import run_on_harness
from omnistream.journey.loader import load_catalog
from omnistream.journey.model import Catalog
from omnistream.journey.scenarios import check, load_scenario, run_scenario

JOURNEYS = Path(__file__).resolve().parents[3] / "journeys"
SCENARIOS = sorted((JOURNEYS / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(JOURNEYS)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_one_customer_goldens_keep_the_one_row_simulators_timeline(
    catalog: Catalog, path: Path
) -> None:
    """Where every event is the scenario customer's, the harness changes no timeline line."""
    scenario = load_scenario(path)
    if any(_names_a_key(event) for event in scenario.events):
        pytest.skip("several keys: the one-row simulator puts them on one row")
    if scenario.delivery is not None:
        pytest.skip("a delivery model: the one-row simulator runs no channel agents")
    on_harness = run_on_harness(catalog, scenario)
    assert on_harness.render() == run_scenario(catalog, scenario).render()


def test_another_visitors_cart_is_not_the_customers(catalog: Catalog) -> None:
    """An anonymous visitor's cart_cleared ends nothing of c-2001's journey (it did one-row)."""
    scenario = load_scenario(JOURNEYS / "scenarios" / "abandoned_cart_other_visitor.yaml")
    result = run_on_harness(catalog, scenario)
    assert not check(scenario, result), result.render()
    assert check(scenario, run_scenario(catalog, scenario))  # the one-row simulator gets it wrong
    visitor = [line for line in result.render().splitlines() if "cart_cleared" in line]
    assert visitor == ["2026-03-02T10:30:00+00:00  event  cart_cleared sim-1 [anon:v-77]"]


def _names_a_key(event: dict[str, object]) -> bool:
    return "customer_id" in event or "anonymous_id" in event


@pytest.mark.parametrize(
    "name",
    [
        "bookstore_delivery_push_fails_email_bounces",
        "bookstore_delivery_cap_reached",
        "bookstore_delivery_no_consent",
    ],
)
def test_delivery_goldens_need_the_channel_agents(catalog: Catalog, name: str) -> None:
    """The delivery goldens pass on the harness and fail without the dispatcher (one-row)."""
    scenario = load_scenario(JOURNEYS / "scenarios" / f"{name}.yaml")
    result = run_on_harness(catalog, scenario)
    assert not check(scenario, result), result.render()
    assert check(scenario, run_scenario(catalog, scenario))
