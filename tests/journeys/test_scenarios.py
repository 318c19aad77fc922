"""Golden journey scenarios: every journeys/scenarios/*.yaml runs on the harness in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnistream.harness.scenarios import run_on_harness
from omnistream.journey.loader import load_catalog
from omnistream.journey.model import Catalog
from omnistream.journey.scenarios import check, load_scenario

JOURNEYS = Path(__file__).resolve().parents[2] / "journeys"
SCENARIOS = sorted((JOURNEYS / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(JOURNEYS)


def test_every_sample_journey_has_a_golden_scenario(catalog: Catalog) -> None:
    covered = {load_scenario(path).journey for path in SCENARIOS}
    assert set(catalog.journeys) <= covered


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(catalog: Catalog, path: Path) -> None:
    scenario = load_scenario(path)
    result = run_on_harness(catalog, scenario)
    problems = check(scenario, result)
    assert not problems, "\n".join([*problems, "--- timeline ---", result.render()])


@pytest.mark.parametrize("path", SCENARIOS[:3], ids=[p.stem for p in SCENARIOS[:3]])
def test_scenario_timeline_is_deterministic(catalog: Catalog, path: Path) -> None:
    scenario = load_scenario(path)
    assert run_on_harness(catalog, scenario).render() == run_on_harness(catalog, scenario).render()
