"""The RSS benchmark seeds exactly what the customer agent would have written, where it would be.

``seed_row`` builds 1M rows from a template; it must equal the real code path's bytes for every
customer number, and each record must go to the partition the worker's own producer would pick
(Kafka's default partitioner), which is the changelog partition Faust recovers it into.
"""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.bench_rss import (
    PARTITIONS,
    customer_id,
    real_row,
    seed_records,
    seed_row,
    traffic,
)
from omnistream.domain.events import parse_event
from omnistream.domain.identity import identifier_key
from omnistream.domain.state import CustomerState
from omnistream.runtime.partitions import partition_of


@given(st.integers(min_value=0, max_value=9_999_999))
def test_seed_row_is_the_real_row(n: int) -> None:
    assert seed_row(n) == real_row(n)


def test_seed_rows_are_valid_rows_of_equal_size() -> None:
    rows = [seed_row(n) for n in (0, 7, 123_456, 999_999)]
    assert len({len(row) for row in rows}) == 1
    state = CustomerState.from_bytes(rows[2])
    assert state.key == customer_id(123_456) == "c-0123456"
    assert state.profile.identifiers == [identifier_key("email", "c-0123456@example.com")]
    assert not state.instances and not state.timers


def test_seed_records_are_one_row_and_one_alias_per_customer() -> None:
    records = list(seed_records(3))
    assert [table for table, _, _ in records] == ["customers", "aliases"] * 3
    _, key, row = records[2]
    _, alias, target = records[3]
    assert key == target == b"c-0000001"
    assert alias.decode() == identifier_key("email", "c-0000001@example.com")
    assert row == seed_row(1)


@pytest.mark.parametrize("key", [b"c-0000000", b"c-0999999", b"email:0123abcd", b""])
def test_partition_is_kafkas_default_partitioner(key: bytes) -> None:
    everything = list(range(PARTITIONS))
    expected = DefaultPartitioner()(key, everything, everything)
    assert partition_of(key, PARTITIONS) == expected


def test_traffic_is_valid_events_of_seeded_customers() -> None:
    events = list(traffic(50, 1000, "rocksdb"))
    assert len({parse_event(raw).event_id for _, raw in events}) == 50
    for key, raw in events:
        event = parse_event(raw)
        assert event.customer_id == key.decode()
        assert int(key.decode().removeprefix("c-")) < 1000
