"""Journey stats math against hand-computed values, and the Faust-kept path against an
independent recount of the same journey events."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnistream.domain.journey_events import JourneyEvent
from omnistream.domain.journey_stats import (
    WINDOWS,
    cells_in_window,
    count,
    newcombe_interval,
    summary,
    wilson_interval,
)
from omnistream.runtime.journey_events import StatsDeltas, stats_buckets

NOW = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
_n = 0


def rec(kind: str, at: datetime = NOW, **fields: Any) -> JourneyEvent:
    global _n
    _n += 1
    base: dict[str, Any] = {
        "record_id": f"r{_n}",
        "kind": kind,
        "customer_key": f"c{_n}",
        "journey_id": "j",
        "journey_version": "v1",
        "control": False,
        "at": at,
    }
    return JourneyEvent(**(base | fields))


def test_wilson_interval_matches_hand_computed_values() -> None:
    # x=10, n=100, z=1.96: centre (0.1 + 0.019208) / 1.038416, spread 1.96*sqrt(0.0009+0.00009604)
    low, high = wilson_interval(10, 100, 1.96)
    assert low == pytest.approx(0.05522, abs=1e-5)
    assert high == pytest.approx(0.17437, abs=1e-5)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_newcombe_interval_matches_newcombes_example() -> None:
    # Newcombe (1998), table II example (e): 56/70 vs 48/80 -> 0.2000, 95% CI 0.0524 to 0.3339
    low, high = newcombe_interval(56, 70, 48, 80)  # type: ignore[misc]
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    assert newcombe_interval(1, 0, 1, 2) is None


def test_summary_control_variants_and_costs_by_hand() -> None:
    records = [
        *(rec("entered") for _ in range(4)),
        *(rec("entered", control=True) for _ in range(2)),
        rec("goal", path="a"),
        rec("goal", path="b"),
        rec("goal", path="a"),
        rec("goal", control=True),
        rec("step", step_id="pick", path="a"),
        rec("step", step_id="pick", path="a"),
        rec("step", step_id="pick", path="b"),
        rec("outcome", outcome="sent", channel="sms", cost=0.05, step_id="s"),
        rec("outcome", outcome="sent", channel="sms", cost=0.05, step_id="s"),
        rec("outcome", outcome="sent", channel="email", cost=0.0001, step_id="s"),
        rec("outcome", outcome="opened", channel="email", step_id="s"),
    ]
    buckets = count(records)["j"]
    figures = summary(cells_in_window(buckets, NOW, "day"), "USD")
    control = figures["control"]
    assert control["treatment"] == {"entered": 4, "converted": 3, "rate": 0.75}
    assert control["control"] == {"entered": 2, "converted": 1, "rate": 0.5}
    assert control["uplift"] == pytest.approx(0.25)
    low, high = control["uplift_ci95"]
    assert low < 0.25 < high
    assert figures["variants"]["pick=a"] == {"entered": 2, "converted": 2, "rate": 1.0}
    assert figures["variants"]["pick=b"] == {"entered": 1, "converted": 1, "rate": 1.0}
    cost = figures["cost"]
    assert cost["total"] == pytest.approx(0.1001)
    assert cost["per_send"] == pytest.approx(0.1001 / 3)
    assert cost["per_conversion"] == pytest.approx(0.1001 / 3)  # treatment goals only
    assert cost["by_channel"] == {"sms": pytest.approx(0.1), "email": pytest.approx(0.0001)}
    assert figures["outcomes"]["sms"] == {"sent": 2}
    assert figures["outcomes"]["email"] == {"sent": 1, "opened": 1}


def test_windows_are_whole_utc_hours_and_version_filters_all() -> None:
    old = rec("entered", at=NOW - timedelta(hours=1, minutes=40))  # 08:50: hour before last
    prev = rec("entered", at=NOW - timedelta(minutes=40))  # 09:50: the previous hour
    week = rec("entered", at=NOW - timedelta(days=3), journey_version="v0")
    buckets = count([old, prev, week, rec("entered")])["j"]
    n = {w: summary(cells_in_window(buckets, NOW, w))["by_kind"].get("entered", 0) for w in WINDOWS}
    assert n == {"hour": 2, "day": 3, "7d": 4, "30d": 4}
    since = summary(cells_in_window(buckets, NOW, "version", "v1"))["by_kind"]
    assert since == {"entered": 3}


_offsets: dict[int, int] = {}


class FakeMessage:
    def __init__(self, value: bytes, partition: int) -> None:
        self.value = value
        self.partition = partition
        self.offset = _offsets.get(partition, 0)  # the partition's next offset
        _offsets[partition] = self.offset + 1


class FakeEvent:
    """A customer-agent input as the stats see it (a Faust event): its message's partition
    (offsets count up per partition, as a stream's do)."""

    def __init__(self, record: JourneyEvent, partition: int) -> None:
        self.message = FakeMessage(record.to_json(), partition)


KINDS = ("entered", "step", "send", "outcome", "goal", "exited")
OUTCOMES = ("sent", "opened", "capped", "fallback")
record_strategy = st.builds(
    lambda kind, outcome, minutes, control, path, channel, journey, version, cost: rec(
        kind,
        at=NOW - timedelta(minutes=minutes),
        outcome=outcome if kind == "outcome" else None,
        control=control,
        path=path,
        channel=channel,
        journey_id=journey,
        journey_version=version,
        cost=cost if kind == "outcome" and outcome == "sent" else None,
        step_id="s1",
    ),
    st.sampled_from(KINDS),
    st.sampled_from(OUTCOMES),
    st.one_of(st.integers(0, 180), st.integers(0, 60 * 24 * 40)),
    st.booleans(),
    st.sampled_from([None, "a", "b"]),
    st.sampled_from([None, "sms", "email"]),
    st.sampled_from(["j1", "j2", None]),
    st.sampled_from(["v1", "v2"]),
    st.sampled_from([0.05, 0.0001]),
)


def recount(records: list[JourneyEvent], journey: str, window: str) -> dict[str, Any]:
    """Independent of the cells: filter the records by time and count by hand."""
    if window == "version":
        chosen = [r for r in records if r.journey_version == "v1"]
    else:
        start = (NOW - WINDOWS[window]).replace(minute=0, second=0, microsecond=0)
        chosen = [r for r in records if r.at >= start]
    chosen = [r for r in chosen if r.journey_id == journey]
    by_kind: dict[str, int] = {}
    for r in chosen:
        by_kind[r.kind] = by_kind.get(r.kind, 0) + 1
    entered_t = sum(1 for r in chosen if r.kind == "entered" and not r.control)
    goals_t = sum(1 for r in chosen if r.kind == "goal" and not r.control)
    return {
        "by_kind": by_kind,
        "treatment": (entered_t, goals_t),
        "cost": sum(r.cost or 0.0 for r in chosen),
        "sent": sum(1 for r in chosen if r.outcome == "sent"),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(record_strategy, max_size=60),
    st.integers(1, 7),
    st.sampled_from([*WINDOWS, "version"]),
)
def test_faust_kept_stats_equal_an_independent_recount(
    records: list[JourneyEvent], batch: int, window: str
) -> None:
    table: dict[bytes, bytes] = {}
    stats = StatsDeltas(table)
    for i in range(0, len(records), batch):  # the customer batches, over several partitions
        for record in records[i : i + batch]:
            stats.add([record], FakeEvent(record, hash(record.customer_key) % 4))
        stats.write(NOW)
    for journey in ("j1", "j2"):
        figures = summary(cells_in_window(stats_buckets(table, journey), NOW, window, "v1"))
        expected = recount(records, journey, window)
        assert figures["by_kind"] == expected["by_kind"]
        treatment = figures["control"]["treatment"]
        assert (treatment["entered"], treatment["converted"]) == expected["treatment"]
        assert math.isclose(figures["cost"]["total"], expected["cost"], abs_tol=1e-9)
        sent = sum(v.get("sent", 0) for v in figures["outcomes"].values())
        assert sent == expected["sent"]


def test_more_goals_than_entries_in_a_window_is_a_proportion_of_one() -> None:
    """Found by hypothesis: a window can count goals whose entries came before it."""
    low, high = wilson_interval(3, 2)
    assert 0.0 <= low <= high == 1.0
