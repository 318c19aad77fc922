"""The stats table as the customer batch keeps it: counts per input partition, written at the
flush, old hours pruned (``runtime/journey_events.StatsDeltas``)."""

from __future__ import annotations

from datetime import timedelta

from omnistream.domain.journey_stats import parse_stats_key
from omnistream.runtime.journey_events import StatsDeltas, prune, stats_buckets
from tests.unit.domain.test_journey_stats import NOW, FakeEvent, rec


def test_old_hour_buckets_are_pruned_once_an_hour_and_all_is_kept() -> None:
    table: dict[bytes, bytes] = {}
    stats = StatsDeltas(table)
    old, new = rec("entered", at=NOW - timedelta(days=32)), rec("entered", at=NOW)
    other = rec("entered", at=NOW - timedelta(days=40))
    stats.add([old, new], FakeEvent(new, 1))
    stats.add([other], FakeEvent(other, 11))  # another partition
    stats.write(NOW - timedelta(days=60))  # nothing old yet at that time
    assert len(stats_buckets(table, "j")) == 4  # two old hours, this hour, all
    pruned: dict[int, int] = {}
    assert prune(table, [FakeEvent(new, 1)], NOW, pruned) == 1  # partition 1 only
    hour = int(NOW.timestamp() // 3600)
    assert set(stats_buckets(table, "j")) == {"all", f"h{hour}", f"h{hour - 40 * 24}"}
    assert prune(table, [FakeEvent(new, 1)], NOW, pruned) == 0  # once an hour
    assert prune(table, [FakeEvent(other, 11)], NOW, pruned) == 1
    assert stats_buckets(table, "j")["all"]["n"]  # since-version counts stay


def test_counts_go_to_the_inputs_partition_once_per_flush() -> None:
    table: dict[bytes, bytes] = {}
    stats = StatsDeltas(table)
    first, second = rec("entered"), rec("step")
    stats.add([first, second], FakeEvent(first, 3))
    stats.add([rec("entered")], FakeEvent(first, 5))
    assert table == {}  # nothing before the flush
    stats.write(NOW)
    partitions = {parse_stats_key(key)[2] for key in table}  # type: ignore[index]
    assert partitions == {3, 5}
    assert len(table) == 4  # (this hour, all) x 2 partitions: one write per key and flush
    stats.write(NOW)  # an empty flush changes nothing
    assert stats_buckets(table, "j")["all"]["n"] == {
        "v1\x1f\x1fentered\x1f\x1f\x1f0\x1f": 2,
        "v1\x1f\x1fstep\x1f\x1f\x1f0\x1f": 1,
    }


def test_a_record_without_a_journey_is_not_counted() -> None:
    """A receipt whose send no live instance holds has no journey id."""
    table: dict[bytes, bytes] = {}
    stats = StatsDeltas(table)
    orphan = rec("outcome", outcome="opened", journey_id=None)
    stats.add([orphan], FakeEvent(orphan, 2))
    stats.write(NOW)
    assert table == {}


def test_counted_offset_keys_of_the_earlier_design_are_not_buckets() -> None:
    """Tables written before the batch counted the stats hold a counted offset per partition."""
    table: dict[bytes, bytes] = {b"\x00counted\x1f\x1f7": b"42"}
    stats = StatsDeltas(table)
    record = rec("entered", at=NOW - timedelta(days=40))
    stats.add([record], FakeEvent(record, 7))
    stats.write(NOW)  # prunes partition 7: the marker is kept, the old hour deleted
    assert b"\x00counted\x1f\x1f7" in table
    assert set(stats_buckets(table, "j")) == {"all"}
