"""The in-memory timer index: due order, cancellation, rebuild from table rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from omnistream.domain.state import CustomerState, Instance, Timer
from omnistream.runtime.partitions import partition_of
from omnistream.runtime.timers import TimerIndex, timer_fired_event

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_pops_only_due_timers_in_due_order() -> None:
    index = TimerIndex()
    index.schedule("c1", "t-late", T0 + timedelta(seconds=30))
    index.schedule("c2", "t-early", T0 + timedelta(seconds=10))
    index.schedule("c1", "t-now", T0)
    assert [t for _, t, _ in index.pop_due(T0 + timedelta(seconds=10))] == ["t-now", "t-early"]
    assert len(index) == 1
    assert index.pop_due(T0 + timedelta(seconds=29)) == []
    assert [t for _, t, _ in index.pop_due(T0 + timedelta(minutes=1))] == ["t-late"]
    assert len(index) == 0


def test_cancelled_and_rescheduled_timers_fire_once_at_the_new_time() -> None:
    index = TimerIndex()
    index.schedule("c1", "a", T0)
    index.cancel("c1", "a")
    index.schedule("c1", "b", T0)
    index.schedule("c1", "b", T0 + timedelta(seconds=5))  # moved later
    assert index.pop_due(T0) == []
    assert index.pop_due(T0 + timedelta(seconds=5)) == [("c1", "b", T0 + timedelta(seconds=5))]
    assert index.oldest_due() is None


def test_rebuild_reads_timers_from_rows_and_skips_rows_without() -> None:
    with_timer = CustomerState(key="c1")
    with_timer.instances["i1"] = Instance(
        instance_id="i1", journey_id="j", version="v", step_id="wait", entered_at=T0
    )
    with_timer.timers["t1"] = Timer(timer_id="t1", instance_id="i1", due=T0)
    without = CustomerState(key="c2")
    index = TimerIndex()
    index.schedule("stale", "x", T0)
    index.rebuild([(b"c1", with_timer.to_bytes()), (b"c2", without.to_bytes())])
    assert index.pop_due(T0) == [("c1", "t1", T0)]
    assert len(index) == 0


def test_timer_fired_event_lands_on_the_same_customer() -> None:
    for key in ("c-9", "anon:cookie-1"):
        event = timer_fired_event(key, "t1", T0)
        assert event.customer_key == key
        assert event.event_id == "timer:t1"
        assert event.timestamp == T0


@given(st.binary(min_size=1, max_size=40), st.integers(1, 64))
def test_partition_of_is_stable_and_in_range(key: bytes, partitions: int) -> None:
    p = partition_of(key, partitions)
    assert 0 <= p < partitions
    assert p == partition_of(key, partitions)


def test_partition_of_matches_kafka_default_partitioner() -> None:
    # Java client's murmur2 reference values (also what aiokafka's DefaultPartitioner uses)
    from aiokafka.partitioner import DefaultPartitioner

    partitioner = DefaultPartitioner()
    for key in (b"c-1", b"anon:xyz", b"customer-123456"):
        assert partition_of(key, 12) == partitioner(key, list(range(12)), list(range(12)))


def test_drop_customer_forgets_only_that_customers_timers() -> None:
    index = TimerIndex()
    index.schedule("c1", "a", T0)
    index.schedule("c1", "b", T0 + timedelta(seconds=1))
    index.schedule("c2", "a", T0)
    index.drop_customer("c1")
    index.drop_customer("c1")  # twice is harmless
    assert len(index) == 1
    assert index.pop_due(T0 + timedelta(minutes=1)) == [("c2", "a", T0)]
    index.schedule("c1", "c", T0)  # a fresh row of the same key starts clean
    assert index.pop_due(T0) == [("c1", "c", T0)]
