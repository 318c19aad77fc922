"""Stream partitions get their records in offset order, none skipped (issue 22's soak loss).

Around a rebalance the consumer's position could move past records nobody handled (a fetch
drained them after the seek back, Faust dropped them), and Faust then read the next record as
a gap to commit past. ``in_offset_order`` sends such a partition back instead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace

from aiokafka.structs import TopicPartition as TP

from omnistream.runtime.continuity import OffsetContinuity, Verdict
from omnistream.runtime.transport import _align, in_offset_order, queued_offsets

A = TP("events.app", 2)
B = TP("events.app", 3)
CHANGELOG = TP("app-customers-changelog", 2)


@dataclass
class Msg:
    topic: str
    offset: int


GAPS: list[tuple[TP, int, int]] = []


def run(
    records: list[tuple[TP, int]], continuity: OffsetContinuity, *, flowing: bool = True
) -> tuple[list[tuple[TP, int]], list[tuple[TP, int]]]:
    """Judge one fetch; returns what was delivered and where partitions were sent back."""
    rewinds: list[tuple[TP, int]] = []
    GAPS.clear()

    async def source() -> AsyncIterator[tuple[TP, Msg]]:
        for tp, offset in records:
            yield tp, Msg(tp.topic, offset)

    async def rewind(tp: TP, offset: int, expected: int) -> None:
        rewinds.append((tp, expected))

    async def add_gap(tp: TP, first: int, last: int) -> None:
        GAPS.append((tp, first, last))

    async def collect() -> list[tuple[TP, int]]:
        judged = in_offset_order(
            source(), continuity, lambda t: "changelog" not in t, rewind, add_gap, lambda: flowing
        )
        return [(tp, m.offset) async for tp, m in judged]

    return asyncio.run(collect()), rewinds


def test_records_in_order_pass() -> None:
    c = OffsetContinuity()
    c.seeked({A: 363, B: None})
    got, rewinds = run([(A, 363), (B, 10), (A, 364), (B, 11)], c)
    assert got == [(A, 363), (B, 10), (A, 364), (B, 11)]
    assert rewinds == []


def test_a_jump_after_the_seek_sends_the_partition_back_instead_of_skipping() -> None:
    """The soak's case: committed 363, the first record read 456 (364..455 never handled)."""
    c = OffsetContinuity()
    c.seeked({A: 363, B: 50})
    got, rewinds = run([(A, 456), (B, 50), (A, 457), (A, 458), (B, 51)], c)
    assert got == [(B, 50), (B, 51)]  # nothing of A past the hole; B goes on
    assert rewinds == [(A, 363)]
    again, more = run([(A, 363), (A, 364)], c)  # the refetch from 363
    assert again == [(A, 363), (A, 364)]
    assert more == []


def test_records_below_the_expected_offset_are_dropped_as_stale() -> None:
    """Records fetched before the seek and handed out after it: already delivered or about to
    be fetched again, never delivered twice in a row nor out of order."""
    c = OffsetContinuity()
    c.seeked({A: 100})
    got, _ = run([(A, 100), (A, 101), (A, 100), (A, 101), (A, 102)], c)
    assert got == [(A, 100), (A, 101), (A, 102)]


def test_a_gap_that_comes_back_after_the_rewind_is_real_and_accepted() -> None:
    """Offsets a broker really does not have (transaction markers, compaction) come back
    identically after the rewind; the second time the record is delivered."""
    c = OffsetContinuity()
    c.seeked({A: 10})
    first, rewinds = run([(A, 12), (A, 13)], c)
    assert first == [] and rewinds == [(A, 10)]
    second, rewinds = run([(A, 12), (A, 13)], c)
    assert second == [(A, 12), (A, 13)] and rewinds == []
    assert GAPS == [(A, 10, 11)]  # Faust is told, so its commits pass the real gap


def test_a_different_jump_after_a_rewind_is_sent_back_again() -> None:
    c = OffsetContinuity()
    c.seeked({A: 10})
    run([(A, 20)], c)
    got, rewinds = run([(A, 15)], c)
    assert got == [] and rewinds == [(A, 10)]


def test_a_jump_over_batches_reported_undecodable_is_expected() -> None:
    c = OffsetContinuity()
    c.seeked({A: 10})
    c.skipped(A, 10, 14)
    c.skipped(A, 15, 19)
    got, rewinds = run([(A, 20), (A, 21)], c)
    assert got == [(A, 20), (A, 21)] and rewinds == []
    assert GAPS == [(A, 10, 19)]


def test_a_skip_that_does_not_cover_the_whole_jump_does_not_excuse_it() -> None:
    c = OffsetContinuity()
    c.seeked({A: 10})
    c.skipped(A, 12, 19)  # 10..11 unexplained
    got, rewinds = run([(A, 20)], c)
    assert got == [] and rewinds == [(A, 10)]


def test_changelogs_are_not_judged() -> None:
    c = OffsetContinuity()
    c.seeked({CHANGELOG: 5})
    got, rewinds = run([(CHANGELOG, 9), (CHANGELOG, 7)], c)
    assert got == [(CHANGELOG, 9), (CHANGELOG, 7)] and rewinds == []


def test_a_revoked_partition_is_forgotten_and_nothing_known_accepts_the_first() -> None:
    c = OffsetContinuity()
    c.seeked({A: 10})
    c.forget([A])
    assert c.expected(A) is None
    assert c.check(A, 500) == (Verdict.DELIVER, None)
    assert c.expected(A) == 501


def test_nothing_is_judged_or_delivered_while_the_flow_is_stopped() -> None:
    """Faust drops what it reads during a rebalance; counting it as delivered would skip it
    for good once the rebalance's seek put the position back (the failover test's stall)."""
    c = OffsetContinuity()
    c.seeked({A: 0})
    got, rewinds = run([(A, 0), (A, 1), (B, 7)], c, flowing=False)
    assert got == []
    assert rewinds == [(A, 0), (B, 7)]  # back to the first record held back, once each
    assert c.expected(A) == 0
    again, _ = run([(A, 0), (A, 1)], c)
    assert again == [(A, 0), (A, 1)]


class PositionedConsumer:
    """aiokafka's consumer as ``_align`` sees it."""

    def __init__(self, positions: dict[TP, int]) -> None:
        self.positions = positions
        self.sought: dict[TP, int] = {}

    def assignment(self) -> set[TP]:
        return set(self.positions)

    async def position(self, tp: TP) -> int:
        return self.positions[tp]

    def seek(self, tp: TP, offset: int) -> None:
        self.sought[tp] = offset


def test_after_the_seek_a_position_past_unread_records_is_put_back() -> None:
    """Records read and dropped while the flow was stopped, after the seek: a quiet partition
    would otherwise keep them unread until its next record arrives."""
    c = OffsetContinuity()
    c.seeked({A: 0, B: 5})
    consumer = PositionedConsumer({A: 2, B: 5})
    moved = asyncio.run(_align(consumer, c))
    assert moved == [A]
    assert consumer.sought == {A: 0}


@dataclass
class QueuedMessage:
    topic: str
    partition: int
    offset: int

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass
class QueuedEvent:
    message: QueuedMessage


def test_records_queued_when_faust_clears_its_stream_queues_are_expected_again() -> None:
    """Faust clears the stream queues when it resumes the flow, also of records read after
    the rebalance's seek: note the lowest queued offset per partition and read from there."""
    queue: asyncio.Queue[object] = asyncio.Queue()
    for event in (
        QueuedEvent(QueuedMessage(A.topic, A.partition, 4)),
        QueuedEvent(QueuedMessage(A.topic, A.partition, 5)),
        QueuedEvent(QueuedMessage(B.topic, B.partition, 9)),
        QueuedEvent(QueuedMessage(CHANGELOG.topic, CHANGELOG.partition, 1)),
        "not an event",
    ):
        queue.put_nowait(event)
    flow_control = SimpleNamespace(_queues={queue})
    lowest = queued_offsets(flow_control, lambda t: "changelog" not in t)
    assert lowest == {A: 4, B: 9}
    c = OffsetContinuity()
    c.seeked({A: 6, B: 3})  # A delivered up to 5, B expects 3 (rewound earlier)
    assert c.held_back(lowest) == {A: 4, B: 3}
    got, rewinds = run([(A, 6)], c)  # the position ran on: sent back to 4
    assert got == [] and rewinds == [(A, 4)]
