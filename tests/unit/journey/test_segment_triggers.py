"""``trigger: {segment_entered: NAME}``: enter when an event moves the profile into a segment."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from omnistream.domain.commands import Emit
from omnistream.domain.profile import Profile
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.journey.graph import mermaid
from omnistream.journey.loader import JourneyLoadError, load_catalog
from omnistream.journey.model import Catalog
from tests.unit.journey.helpers import T0, catalog_of, ev, sends

SEGMENTS = """
segments:
  big_spenders:
    when: profile.traits.spent >= 100
  vip:
    when: in_segment("big_spenders") and profile.traits.vip
"""

THANKS = """
id: thanks
name: Thanks
trigger: {segment_entered: big_spenders}
steps:
  - id: thank
    type: send
    channels: [email]
    content:
      email: {subject: "Thanks", body: "You are in {{ trigger.properties.segment }}"}
"""


def with_segments(tmp: Path, *journeys: str) -> Catalog:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "segments.yaml").write_text(textwrap.dedent(SEGMENTS))
    return catalog_of(tmp, *journeys)


def spent(amount: float) -> CustomerState:
    return CustomerState(key="c1", profile=Profile(traits={"spent": amount}))


def entered(commands: list[object]) -> list[str | None]:
    return [c.journey_id for c in commands if isinstance(c, Emit) and c.name == "journey_entered"]


def test_entering_the_segment_enters_the_journey(tmp_path: Path) -> None:
    catalog = with_segments(tmp_path, THANKS)
    state, commands = step(catalog, spent(50), ev("profile_updated", traits={"spent": 120}), T0)
    assert entered(commands) == ["thanks"]
    (send,) = sends(commands)
    assert send.messages["email"].body == "You are in big_spenders"
    # already in the segment: another change does not enter again
    _, commands = step(catalog, state, ev("profile_updated", traits={"spent": 150}), T0)
    assert entered(commands) == []


def test_staying_outside_or_unchanged_enters_nothing(tmp_path: Path) -> None:
    catalog = with_segments(tmp_path, THANKS)
    _, commands = step(catalog, spent(50), ev("profile_updated", traits={"spent": 60}), T0)
    assert commands == []
    _, commands = step(catalog, spent(150), ev("page_viewed"), T0)  # in it, no change
    assert commands == []


def test_catalog_indexes_segment_triggers_and_keeps_targeting(tmp_path: Path) -> None:
    catalog = with_segments(tmp_path, THANKS)
    assert set(catalog.segment_triggers) == {"big_spenders"}
    assert "big_spenders" in catalog.targeting.segments
    assert catalog.carry_over(catalog).targeting is catalog.targeting
    assert catalog.only("thanks").segment_triggers == catalog.segment_triggers


def test_when_condition_sees_the_segment_event(tmp_path: Path) -> None:
    journey = THANKS.replace(
        "trigger: {segment_entered: big_spenders}",
        "trigger: {segment_entered: big_spenders, when: 'event.properties.cause == \"x\"'}",
    )
    catalog = with_segments(tmp_path, journey)
    _, commands = step(catalog, spent(50), ev("profile_updated", traits={"spent": 120}), T0)
    assert entered(commands) == []


@pytest.mark.parametrize(
    ("journey", "message"),
    [
        (THANKS.replace("big_spenders}", "big_spender}"), "unknown segment 'big_spender'"),
        (
            THANKS.replace("{segment_entered: big_spenders}", "{segment_entered: vip, after: 1d}"),
            "'after' goes with an 'event' trigger",
        ),
        (
            THANKS.replace("{segment_entered: big_spenders}", "{segment_entered: vip, event: x}"),
            "exactly one of",
        ),
    ],
)
def test_bad_segment_triggers_name_file_and_line(
    tmp_path: Path, journey: str, message: str
) -> None:
    with pytest.raises(JourneyLoadError) as caught:
        with_segments(tmp_path, journey)
    (error,) = caught.value.errors
    assert message in error.message and error.file.endswith("j0.yaml") and error.line >= 2


def test_segment_trigger_version_follows_the_segments_file(tmp_path: Path) -> None:
    before = with_segments(tmp_path, THANKS).journeys["thanks"].version
    (tmp_path / "segments.yaml").write_text(SEGMENTS.replace(">= 100", ">= 200"))
    assert load_catalog(tmp_path).journeys["thanks"].version != before


def test_graph_names_the_segment(tmp_path: Path) -> None:
    text = mermaid(with_segments(tmp_path, THANKS).journeys["thanks"])
    assert "Thanks: entered segment big_spenders" in text
