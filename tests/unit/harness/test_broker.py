"""The memory broker partitions as the worker's producer does and reads its own output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from omnistream.harness.broker import MemoryBroker
from omnistream.harness.clock import ManualClock
from omnistream.harness.tables import MemoryTable
from omnistream.runtime.partitions import partition_of


def test_a_keyed_record_lands_in_the_workers_partition_of_its_key() -> None:
    broker = MemoryBroker(partitions=8)
    for n in range(50):
        key = f"customer-{n}".encode()
        record = broker.send("t", key, b"x")
        assert record.partition == partition_of(key, 8)
    offsets = [r.offset for r in broker.records("t") if r.partition == 0]
    assert offsets == list(range(len(offsets)))


def test_poll_reads_records_produced_while_reading_in_partition_order() -> None:
    broker = MemoryBroker(partitions=2)
    broker.send("t", b"a", b"1")
    seen: list[bytes] = []
    for record in broker.poll("t"):
        seen.append(record.value)
        if record.value == b"1":
            broker.send("t", b"a", b"2")  # handling one record produces the next
    assert seen == [b"1", b"2"]
    assert list(broker.poll("t")) == []


def test_the_clock_never_runs_backwards_and_the_table_iterates_in_key_order() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    clock = ManualClock(t0)
    clock.advance_to(t0 - timedelta(hours=1))
    assert clock.now == t0
    table = MemoryTable()
    table[b"b"], table[b"a"] = b"2", b"1"
    assert list(table) == [b"a", b"b"] and table.writes == 2
