"""The graph's start node names every kind of trigger (it said "None" for the new ones)."""

from __future__ import annotations

from pathlib import Path

from omnistream.journey.graph import mermaid
from omnistream.journey.loader import load_catalog

JOURNEYS = Path(__file__).resolve().parents[3] / "journeys"


def start_line(journey_id: str) -> str:
    catalog = load_catalog(JOURNEYS)
    journey = catalog.journeys[journey_id]
    return mermaid(journey).splitlines()[1]


def test_attribute_and_schedule_triggers_name_their_start() -> None:
    assert "profile.traits.tier changed" in start_line("gold_tier")
    assert "broadcast to friday_regulars" in start_line("sushi_friday")
    assert "None" not in start_line("gold_tier") + start_line("sushi_friday")
