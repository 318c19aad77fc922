"""The stats table's upkeep: hour buckets older than the longest window are deleted."""

from __future__ import annotations

from datetime import timedelta

from omnistream.domain.journey_stats import counted_key
from omnistream.runtime.journey_events import _apply, _deltas, count_batch, prune, stats_buckets
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


def test_a_batch_read_again_is_not_counted_again() -> None:
    """A partition that moved before its offsets were committed is read again by its new owner
    (or by the same worker after a crash): the table's counted offsets skip what it holds."""
    table: dict[bytes, bytes] = {}
    first = [FakeEvent(rec("entered"), 3) for _ in range(4)]
    other = [FakeEvent(rec("entered"), 5) for _ in range(2)]
    assert count_batch(table, first[:3] + other) == 5
    assert count_batch(table, first + other) == 1  # only the fourth of partition 3 is new
    assert count_batch(table, first) == 0
    assert stats_buckets(table, "j")["all"]["n"] == {"v1\x1f\x1fentered\x1f\x1f\x1f0\x1f": 6}
    assert set(stats_buckets(table, "j")) == {"all", f"h{int(NOW.timestamp() // 3600)}"}


def test_counted_offsets_are_not_buckets_and_survive_pruning() -> None:
    table: dict[bytes, bytes] = {}
    event = FakeEvent(rec("entered", at=NOW - timedelta(days=40)), 7)
    count_batch(table, [event])
    assert prune(table, [event], NOW, {}) == 1
    assert table[counted_key(7)] == str(event.message.offset + 1).encode()
    assert count_batch(table, [event]) == 0


def test_a_record_handed_to_one_batch_twice_is_counted_once() -> None:
    """Measured around a rebalance: one batch held offsets 58-62 and then 58-63."""
    table: dict[bytes, bytes] = {}
    events = [FakeEvent(rec("entered"), 9) for _ in range(6)]
    assert count_batch(table, events[:5] + events) == 6
    assert sum(stats_buckets(table, "j")["all"]["n"].values()) == 6
