"""The stats table's upkeep: hour buckets older than the longest window are deleted."""

from __future__ import annotations

from datetime import timedelta

from omnistream.runtime.journey_events import _apply, _deltas, prune, stats_buckets
from tests.unit.domain.test_journey_stats import NOW, FakeEvent, rec


def test_old_hour_buckets_are_pruned_once_an_hour_and_all_is_kept() -> None:
    table: dict[bytes, bytes] = {}
    old = FakeEvent(rec("entered", at=NOW - timedelta(days=32)), 1)
    new = FakeEvent(rec("entered", at=NOW), 1)
    other = FakeEvent(rec("entered", at=NOW - timedelta(days=40)), 11)  # another partition
    _apply(table, _deltas([old, new, other]))
    assert len(stats_buckets(table, "j")) == 4  # two old hours, this hour, all
    pruned: dict[int, int] = {}
    assert prune(table, [new], NOW, pruned) == 1  # partition 1 only
    hour = int(NOW.timestamp() // 3600)
    assert set(stats_buckets(table, "j")) == {"all", f"h{hour}", f"h{hour - 40 * 24}"}
    assert prune(table, [new], NOW, pruned) == 0  # once an hour
    assert prune(table, [other], NOW, pruned) == 1
    assert stats_buckets(table, "j")["all"]["n"]  # since-version counts stay
