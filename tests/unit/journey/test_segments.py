"""Segments and score settings (journeys/segments.yaml): loading, errors, versions, entering."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from omnistream.journey.loader import (
    JourneyLoadError,
    journey_files,
    load_catalog,
    load_targeting,
)
from omnistream.journey.model import BranchStep, Catalog
from omnistream.journey.segments import segments_entered, segments_of

NOW = datetime(2026, 3, 5, 12, tzinfo=UTC)

SEGMENTS = """\
scores:
  rfm: {recency_days: [10, 20, 30, 40]}
segments:
  buyers:
    description: Ordered at least once.
    when: profile.orders.count >= 1
  lapsed:
    when: in_segment("buyers") and rfm_segment() in ["lapsed", "at_risk"]
  friday_regulars:
    when: orders_count(weekday="fri", days=180) >= 2
"""

JOURNEY = """\
id: {id}
name: Test
status: active
trigger: {{event: order_placed}}
steps:
  - id: check
    type: branch
    branches:
      - when: {when}
        next: done
    else: done
  - id: done
    type: exit
"""


def write(directory: Path, segments: str | None, **journeys: str) -> None:
    if segments is not None:
        (directory / "segments.yaml").write_text(textwrap.dedent(segments))
    for name, when in journeys.items():
        (directory / f"{name}.yaml").write_text(JOURNEY.format(id=name, when=when))


def condition(catalog: Catalog, journey_id: str) -> Any:
    step = catalog.journeys[journey_id].steps[0]
    assert isinstance(step, BranchStep)
    return step.branches[0].when


def profile(last_order: str, count: int = 1) -> dict[str, Any]:
    return {"orders": {"count": count, "revenue": "50", "last_order_at": last_order}}


def errors_of(directory: Path) -> list[str]:
    with pytest.raises(JourneyLoadError) as caught:
        load_catalog(directory)
    return [str(e) for e in caught.value.errors]


def test_journeys_use_segments_by_name(tmp_path: Path) -> None:
    write(tmp_path, SEGMENTS, win_back="in_segment('lapsed')")
    when = condition(load_catalog(tmp_path), "win_back")
    # rfm cut-offs (10, 20, 30, 40) from the file: 64 days is R = 1, one order -> lapsed
    assert when.test({"profile": profile("2026-01-01T00:00:00+00:00"), "now": NOW}) is True
    assert when.test({"profile": profile("2026-03-01T00:00:00+00:00"), "now": NOW}) is False
    assert when.test({"profile": {}, "now": NOW}) is False  # not a buyer


def test_the_segments_file_is_not_a_journey(tmp_path: Path) -> None:
    write(tmp_path, SEGMENTS, a="profile.orders.count > 0")
    assert [p.name for p in journey_files(tmp_path)] == ["a.yaml"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("segments:\n  x:\n    when: event.type == 'a'\n", "segments.yaml:3: segments.x.when: "),
        ("segments:\n  x:\n    when: orders_count(weekday='friday')\n", "segments.yaml:3:"),
        ("segments:\n  x:\n    when: in_segment('y')\n  y:\n    when: 'true'\n", "unknown segment"),
        ("segments:\n  Bad-Name:\n    when: 'true'\n", "segments.yaml:2: segment 'Bad-Name'"),
        ("segments:\n  x:\n    wen: true\n", "segments.yaml:3: segments.x.wen: unknown key"),
        ("scores:\n  rfm:\n    frequency: [5, 3, 2, 1]\n", "segments.yaml:3: scores.rfm"),
        ("scores:\n  purchase_model: {r: -1}\n", "segments.yaml:2: scores.purchase_model.r"),
        ("- a\n- b\n", "segments.yaml:1: a segments file must be a YAML mapping"),
        ("segments:\n  x:\n    when: 1 ==\n", "invalid condition syntax"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, text)
    errors = errors_of(tmp_path)
    assert any(expected in e for e in errors), errors


def test_a_segment_may_not_read_the_event(tmp_path: Path) -> None:
    write(tmp_path, "segments:\n  x:\n    when: trigger.type == 'a'\n")
    (error,) = errors_of(tmp_path)
    assert "a segment is about the profile; 'trigger'" in error


def test_unknown_segment_in_a_journey_is_a_file_error(tmp_path: Path) -> None:
    write(tmp_path, SEGMENTS, j="in_segment('lapsd')")
    (error,) = errors_of(tmp_path)
    assert "j.yaml:9:" in error and "did you mean 'lapsed'?" in error


def test_versions_follow_the_segments_a_journey_uses(tmp_path: Path) -> None:
    """Editing segments.yaml changes the version of journeys using segments (hot reload sees a
    new set); a journey using neither segments nor scores keeps its version."""
    write(
        tmp_path,
        SEGMENTS,
        seg="in_segment('lapsed')",
        plain="profile.orders.count > 0",
        score="p_alive() > 0.5",
    )
    before = {j.id: j.version for j in load_catalog(tmp_path).journeys.values()}
    write(tmp_path, SEGMENTS.replace("[10, 20, 30, 40]", "[5, 20, 30, 40]"))
    after = {j.id: j.version for j in load_catalog(tmp_path).journeys.values()}
    assert before["plain"] == after["plain"]
    assert before["seg"] != after["seg"]
    assert before["score"] != after["score"]


def test_score_journeys_keep_their_version_without_a_segments_file(tmp_path: Path) -> None:
    """A segments file with default scores gives score journeys the version they have without
    one (the last good copy of the set may lack the file)."""
    write(tmp_path, None, score="p_alive() > 0.5")
    alone = load_catalog(tmp_path).journeys["score"].version
    write(tmp_path, "segments:\n  all:\n    when: 'true'\n")
    assert load_catalog(tmp_path).journeys["score"].version == alone


def test_segments_entered_after_a_profile_change(tmp_path: Path) -> None:
    write(tmp_path, SEGMENTS)
    targeting = load_targeting(tmp_path / "segments.yaml", "UTC")
    stranger: dict[str, Any] = {}
    buyer = profile("2026-03-04T00:00:00+00:00")
    lapsed = profile("2025-12-01T00:00:00+00:00")
    assert segments_of(buyer, NOW, targeting) == {"buyers"}
    assert segments_entered(stranger, buyer, NOW, targeting) == {"buyers"}
    assert segments_entered(buyer, buyer, NOW, targeting) == set()
    assert segments_entered(stranger, lapsed, NOW, targeting) == {"buyers", "lapsed"}
    assert segments_entered(lapsed, buyer, NOW, targeting) == set()  # leaving is not entering
