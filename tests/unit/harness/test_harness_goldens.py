"""The golden scenarios on the harness: same timeline as the pure simulator, same expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnistream.harness.simulate import simulate_on_harness
from omnistream.journey.loader import load_catalog
from omnistream.journey.model import Catalog
from omnistream.journey.scenarios import check, load_scenario, run_scenario

JOURNEYS = Path(__file__).resolve().parents[3] / "journeys"
SCENARIOS = sorted((JOURNEYS / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(JOURNEYS)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_golden_on_the_harness(catalog: Catalog, path: Path) -> None:
    """Each golden passes on the harness, with the very timeline of the one-row simulator."""
    scenario = load_scenario(path)
    on_harness = simulate_on_harness(
        catalog.only(scenario.journey),
        scenario.events,
        profile=scenario.profile,
        customer_key=scenario.customer,
        until=scenario.until,
    )
    problems = check(scenario, on_harness)
    assert not problems, "\n".join([*problems, "--- timeline ---", on_harness.render()])
    assert on_harness.render() == run_scenario(catalog, scenario).render()
