"""The timer loop's gate: a due timer fires only once its partition's source inputs were read
up to its due time (``runtime/watermarks.py``, ``runtime/timers.fire_due``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from omnistream.harness.clock import ManualClock
from omnistream.harness.run import CUSTOMER_EVENTS, Harness
from omnistream.journey.model import Catalog
from omnistream.observability.metrics import REGISTRY
from omnistream.runtime.partitions import partition_of
from omnistream.runtime.timers import fire_due
from omnistream.runtime.watermarks import InputWatermarks, ReadPosition

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SITE, CRM = "omni.events.site", "omni.events.crm"


Offsets = dict[tuple[str, int], int]


def gate(
    ends: Offsets, starts: Offsets, delivered: Offsets | None = None, fetched: Offsets | None = None
) -> InputWatermarks:
    """A gate over a consumer positioned at ``starts``; its stream got records up to
    ``delivered`` and the client handed out up to ``fetched`` (both default: nothing more)."""

    def reader(topic: str, partition: int) -> ReadPosition:
        tp = (topic, partition)
        start = starts.get(tp)
        given = (delivered or {}).get(tp, start)
        return ReadPosition(start, given, (fetched or {}).get(tp, given), ends.get(tp))

    return InputWatermarks([SITE, CRM], reader)


def test_a_partition_is_read_up_to_its_slowest_source() -> None:
    ends = {(SITE, 0): 10, (CRM, 0): 5}
    watermarks = gate(ends, {(SITE, 0): 0, (CRM, 0): 0})
    watermarks.handled(SITE, 0, 9, T0 + timedelta(seconds=30))  # site: all read
    assert watermarks.read_up_to(0, T0 + timedelta(minutes=1)) is None  # crm: nothing read yet
    watermarks.handled(CRM, 0, 2, T0 + timedelta(seconds=5))
    assert watermarks.read_up_to(0, T0 + timedelta(minutes=1)) == T0 + timedelta(seconds=5)
    watermarks.handled(CRM, 0, 4, T0 + timedelta(seconds=8))  # crm: all read too
    assert watermarks.read_up_to(0, T0 + timedelta(minutes=1)) == T0 + timedelta(minutes=1)


def test_a_quiet_source_is_read_up_to_now_and_an_unknown_end_is_not() -> None:
    now = T0 + timedelta(minutes=1)
    quiet = gate({(SITE, 1): 7, (CRM, 1): 0}, {(SITE, 1): 7, (CRM, 1): 0})
    assert quiet.read_up_to(1, now) == now  # nothing after the committed offsets
    unknown = gate({(SITE, 1): 7}, {(SITE, 1): 7, (CRM, 1): 0})  # crm[1] not fetched yet
    assert unknown.read_up_to(1, now) is None


def test_a_transaction_marker_at_the_end_does_not_hold_the_partition_forever() -> None:
    """A transactional producer's commit marker takes an offset: the last record is 9, the
    end is 11, and the client hands out up to 11. Once record 9 is handled, nothing is pending
    and nothing is left: read to the end. With record 10 given to the stream and not handled
    yet, it is not."""
    now = T0 + timedelta(minutes=1)
    ends, starts = {(SITE, 0): 11, (CRM, 0): 0}, {(SITE, 0): 0, (CRM, 0): 0}
    marker = gate(ends, starts, delivered={(SITE, 0): 10}, fetched={(SITE, 0): 11})
    marker.handled(SITE, 0, 9, T0)
    assert marker.read_up_to(0, now) == now
    pending = gate(ends, starts, delivered={(SITE, 0): 11}, fetched={(SITE, 0): 11})
    pending.handled(SITE, 0, 9, T0)
    assert pending.read_up_to(0, now) == T0


def test_an_assignment_forgets_what_was_handled_before() -> None:
    ends = {(SITE, 0): 10, (CRM, 0): 0}
    watermarks = gate(ends, {(SITE, 0): 3, (CRM, 0): 0})
    watermarks.handled(SITE, 0, 9, T0)
    assert watermarks.read_up_to(0, T0 + timedelta(minutes=1)) is not None
    watermarks.reset()  # a new assignment (the partition went away and came back): from 3 again
    assert watermarks.read_up_to(0, T0 + timedelta(minutes=1)) is None


def test_the_timer_loop_holds_a_due_timer_until_the_cart_partitions_inputs_are_read() -> None:
    """The worker's ``fire_due`` on the harness's runtime: an order waits unread on the
    customer's source partition, so the cart's due timer stays in the index; once the order is
    read, the timer fires."""
    harness = Harness(Catalog(), ManualClock(T0))
    runtime = harness.runtime
    due = T0 + timedelta(seconds=20)
    runtime.timers.schedule("c-1", "i1:t1", due)
    order = harness.broker.send(CRM, b"c-1", b"{}")  # produced, not read yet
    assert order.partition == partition_of(b"c-1", harness.partitions)
    now = T0 + timedelta(seconds=50)
    asyncio.run(fire_due(runtime, now))
    assert harness.broker.records(CUSTOMER_EVENTS) == []
    assert runtime.timers.oldest_due() == due  # kept for a later tick
    assert REGISTRY.get_sample_value("omnistream_timers_held") == 1
    assert runtime.watermarks is not None
    runtime.watermarks.handled(CRM, order.partition, order.offset, T0 + timedelta(seconds=1))
    asyncio.run(fire_due(runtime, now))
    (fired,) = harness.broker.records(CUSTOMER_EVENTS)
    assert fired.key == b"c-1" and b"timer_fired" in fired.value
    assert runtime.timers.oldest_due() is None
    assert REGISTRY.get_sample_value("omnistream_timers_held") == 0


def test_a_timer_of_a_partition_this_worker_no_longer_owns_is_not_held() -> None:
    """The index holds only owned partitions' timers; one left over from a revoked partition is
    not held for inputs this worker no longer reads."""
    harness = Harness(Catalog(), ManualClock(T0))
    runtime = harness.runtime
    runtime.timers.schedule("c-1", "i1:t1", T0)
    harness.broker.send(CRM, b"c-1", b"{}")  # unread: would hold it in an owned partition
    runtime.owned.owned = frozenset()
    asyncio.run(fire_due(runtime, T0 + timedelta(seconds=1)))
    assert len(harness.broker.records(CUSTOMER_EVENTS)) == 1
