"""The timer loop's gate: a due timer fires only once its partition's source inputs were read
up to its due time (``runtime/watermarks.py``, ``runtime/timers.fire_due``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from omnistream.harness.clock import ManualClock
from omnistream.harness.run import CUSTOMER_EVENTS, Harness
from omnistream.journey.model import Catalog
from omnistream.runtime.partitions import partition_of
from omnistream.runtime.timers import fire_due
from omnistream.runtime.watermarks import InputWatermarks

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SITE, CRM = "omni.events.site", "omni.events.crm"


def gate(ends: dict[tuple[str, int], int], starts: dict[tuple[str, int], int]) -> InputWatermarks:
    watermarks = InputWatermarks(
        [SITE, CRM], lambda t, p: ends.get((t, p)), lambda t, p: starts.get((t, p))
    )
    watermarks.assigned([0, 1])
    return watermarks


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


def test_an_assignment_forgets_what_was_handled_before() -> None:
    ends = {(SITE, 0): 10, (CRM, 0): 0}
    watermarks = gate(ends, {(SITE, 0): 3, (CRM, 0): 0})
    watermarks.handled(SITE, 0, 9, T0)
    assert watermarks.read_up_to(0, T0 + timedelta(minutes=1)) is not None
    watermarks.assigned([0])  # the partition went away and came back: read from 3 again
    assert watermarks.read_up_to(0, T0 + timedelta(minutes=1)) is None
    assert watermarks.gates(0) and not watermarks.gates(1)


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
    assert runtime.watermarks is not None
    runtime.watermarks.handled(CRM, order.partition, order.offset, T0 + timedelta(seconds=1))
    asyncio.run(fire_due(runtime, now))
    (fired,) = harness.broker.records(CUSTOMER_EVENTS)
    assert fired.key == b"c-1" and b"timer_fired" in fired.value
    assert runtime.timers.oldest_due() is None
