"""Our Faust transport driver: broker URLs, the seek back to committed offsets, and record
batches the consumer cannot decode (skipped, reported, never fatal)."""

from __future__ import annotations

import asyncio
import struct
import threading
import zlib
from collections import OrderedDict
from types import SimpleNamespace
from typing import Any, cast

import aiokafka.codec
import pytest
from aiokafka.consumer.fetcher import READ_UNCOMMITTED, FetchResult, PartitionRecords
from aiokafka.errors import IllegalStateError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition as TP

from omnistream.observability.metrics import REGISTRY
from omnistream.runtime import undecodable
from omnistream.runtime.continuity import OffsetContinuity
from omnistream.runtime.dlq import DeadLetter
from omnistream.runtime.transport import SCHEME, driver_url, seek_assigned_to_committed
from omnistream.runtime.undecodable import UNDECODABLE_BATCH, UndecodableBatch, tolerate


def test_driver_url_rewrites_every_broker() -> None:
    assert driver_url("kafka://a:9092;kafka://b:9093") == f"{SCHEME}://a:9092;{SCHEME}://b:9093"
    assert driver_url("b:9092") == f"{SCHEME}://b:9092"


class FakeConsumer:
    """aiokafka's consumer as the seek sees it; ``revoked`` partitions vanish while their
    committed offset is fetched (a rebalance in between)."""

    def __init__(self, committed: dict[TP, int | None], revoked: set[TP]) -> None:
        self._committed = committed
        self._revoked = revoked
        self.assigned = set(committed)
        self.positions: dict[TP, int | str] = {}

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    async def committed(self, tp: TP) -> int | None:
        self.assigned -= self._revoked & {tp}
        return self._committed[tp]

    def seek(self, tp: TP, offset: int) -> None:
        if tp not in self.assigned:
            raise IllegalStateError(f"No current assignment for partition {tp}")
        self.positions[tp] = offset

    async def seek_to_beginning(self, tp: TP) -> None:
        self.positions[tp] = "beginning"

    async def position(self, tp: TP) -> int:
        return 0 if self.positions.get(tp) == "beginning" else int(self.positions[tp])


def test_the_seek_back_covers_every_partition_still_assigned() -> None:
    """aiokafka stops at the first revoked partition and skips partitions with nothing
    committed: both left records Faust had dropped unread (a lost send in the churn test)."""
    revoked, after, fresh = TP("t.events", 0), TP("t.events", 1), TP("t.events", 2)
    changelog = TP("app-customers-changelog", 0)
    consumer = FakeConsumer({revoked: 7, after: 12, fresh: None, changelog: None}, {revoked})
    app = SimpleNamespace(tables=SimpleNamespace(changelog_topics={changelog.topic}))
    continuity = OffsetContinuity()
    continuity.seeked({after: 40, fresh: 9})  # before the rebalance
    committed = asyncio.run(seek_assigned_to_committed(consumer, app, continuity))
    assert consumer.positions == {after: 12, fresh: "beginning"}  # changelog: recovery's job
    assert committed == {revoked: 7, after: 12, fresh: None, changelog: None}
    # each seek also moved what the streams expect next, in the same step
    assert continuity.expectations() == {after: 12, fresh: 0}


# --- record batches the consumer cannot decode (issue 15 item 1) -----------------------------

HEADER = 61  # bytes of a v2 record batch header; the CRC covers everything from ATTRIBUTES on
CRC, ATTRIBUTES = 17, 21
TOPIC_PARTITION = TP("t.events.site", 2)


def batch(base: int, count: int, codec: int = 0) -> bytearray:
    """A real v2 record batch of ``count`` records from offset ``base``, as a broker sends it."""
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=0, producer_id=-1,
        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20,
    )  # fmt: skip
    for n in range(count):
        builder.append(n, timestamp=None, key=b"k", value=b"value %d " % (base + n) * 8, headers=[])
    buffer = builder.build()
    struct.pack_into(">q", buffer, 0, base)  # the broker assigns offsets (not under the CRC)
    return buffer


def corrupt_body(buffer: bytearray) -> bytearray:
    """Garble the compressed records but keep the CRC valid (Tansu accepts such a batch)."""
    for i in range(HEADER + 10, HEADER + 40):
        buffer[i] ^= 0x5A
    struct.pack_into(">I", buffer, CRC, calc_crc32c(bytes(buffer[ATTRIBUTES:])))
    return buffer


def bad_crc(buffer: bytearray) -> bytearray:
    buffer[-1] ^= 0xFF
    return buffer


class PartitionState:
    """aiokafka's position of the one partition, as ``FetchResult`` reads and moves it."""

    def __init__(self, position: int) -> None:
        self.paused = False
        self.position = position

    def consumed_to(self, offset: int) -> None:
        self.position = offset


def fetch_result(data: bytes, fetch_offset: int = 0) -> FetchResult:
    """What aiokafka's fetch task stores for a fetched partition: the raw batches, undecoded."""
    state = PartitionState(fetch_offset)
    assignment = SimpleNamespace(active=True, state_value=lambda tp: state)
    records = PartitionRecords(
        TOPIC_PARTITION, MemoryRecords(data), None, fetch_offset, None, None,
        True, READ_UNCOMMITTED,
    )  # fmt: skip
    return FetchResult(TOPIC_PARTITION, assignment=assignment, partition_records=records, backoff=0)


def mixed_fetch(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Good records 0-2 and 11-12 around three batches that cannot be decoded: a corrupt gzip
    body (3-5), a bad CRC (6-7), snappy without its library (8-10)."""
    data = b"".join(
        [
            batch(0, 3),
            corrupt_body(batch(3, 3, codec=1)),
            bad_crc(batch(6, 2)),
            batch(8, 3, codec=2),
            batch(11, 2),
        ]
    )
    monkeypatch.setattr(aiokafka.codec, "has_snappy", lambda: False)  # as before cramjam
    return data


def test_plain_aiokafka_raises_out_of_the_fetch_for_an_undecodable_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bug: the error escapes ``fetched_records`` (Faust's fetcher crashes on it), and the
    records decoded before it in the same call are dropped with it."""
    result = fetch_result(mixed_fetch(monkeypatch))
    with pytest.raises(zlib.error):
        result.getall()


def test_undecodable_batches_are_skipped_and_reported_and_the_rest_delivered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reports: list[UndecodableBatch] = []
    fetcher = SimpleNamespace(_records=OrderedDict())
    tolerate(fetcher, reports.append)
    fetcher._records[TOPIC_PARTITION] = fetch_result(mixed_fetch(monkeypatch))  # the fetch task

    records = fetcher._records[TOPIC_PARTITION].getall()

    assert [r.offset for r in records] == [0, 1, 2, 11, 12]
    assert records[-1].value == b"value 12 " * 8
    assert [(r.first_offset, r.last_offset, r.codec) for r in reports] == [
        (3, 5, "gzip"), (6, 7, "none"), (8, 10, "snappy"),
    ]  # fmt: skip
    assert [r.error.split(":")[0] for r in reports] == [
        "error", "CorruptRecordException", "UnsupportedCodecError",
    ]  # fmt: skip
    assert reports[2].detail == (
        "offsets 8-10 skipped, codec snappy: "
        "UnsupportedCodecError: Libraries for snappy compression codec not found"
    )
    assert {(r.topic, r.partition) for r in reports} == {("t.events.site", 2)}


def test_results_fetched_before_tolerate_are_covered_and_a_repeat_changes_nothing() -> None:
    reports: list[UndecodableBatch] = []
    early = fetch_result(bytes(batch(0, 2)) + bytes(bad_crc(batch(2, 2))))
    fetcher = SimpleNamespace(_records=OrderedDict({TOPIC_PARTITION: early}))
    tolerate(fetcher, reports.append)
    tolerate(fetcher, lambda batch: pytest.fail("wrapped twice"))
    assert [r.offset for r in fetcher._records[TOPIC_PARTITION].getall()] == [0, 1]
    assert [(r.first_offset, r.last_offset) for r in reports] == [(2, 3)]


def test_a_fetch_starting_inside_a_batch_reports_the_range_it_skips() -> None:
    """A partition committed at 5 gets the batch 3-7 whole: only 5-7 were never delivered."""
    reports: list[UndecodableBatch] = []
    fetcher = SimpleNamespace(_records=OrderedDict())
    tolerate(fetcher, reports.append)
    fetcher._records[TOPIC_PARTITION] = fetch_result(bytes(bad_crc(batch(3, 5))), fetch_offset=5)
    assert fetcher._records[TOPIC_PARTITION].getall() == []
    assert [(r.first_offset, r.last_offset) for r in reports] == [(5, 7)]


def test_a_skipped_batch_is_counted_and_dead_lettered_with_its_range() -> None:
    sent: list[dict[str, Any]] = []

    class Dlq:
        async def send(self, **record: Any) -> None:
            sent.append(record)

    runtime = SimpleNamespace(app=SimpleNamespace(), topics=SimpleNamespace(dlq=Dlq()))
    skipped = UndecodableBatch("t.events.app", 1, 40, 44, "lz4", "error: Error -3")
    before = REGISTRY.get_sample_value(
        "omnistream_undecodable_batches_total", {"topic": "t.events.app"}
    )
    undecodable.record(skipped)
    asyncio.run(undecodable.dead_letter_batch(cast(Any, runtime), skipped))

    after = REGISTRY.get_sample_value(
        "omnistream_undecodable_batches_total", {"topic": "t.events.app"}
    )
    assert (after or 0) - (before or 0) == 1
    (record,) = sent
    assert (record["key"], record["value"]) == (None, b"")
    letter = DeadLetter.from_headers(record["headers"])
    assert (letter.reason, letter.topic, letter.partition, letter.offset) == (
        UNDECODABLE_BATCH, "t.events.app", 1, 40,
    )  # fmt: skip
    assert letter.detail == "offsets 40-44 skipped, codec lz4: error: Error -3"


def test_the_consumer_thread_hands_the_gap_and_the_dlq_record_to_the_apps_loop() -> None:
    """The batch is found on Faust's consumer thread; Faust's consumer (its gap) and the
    producer (the DLQ send) live on the app's loop."""
    skipped = UndecodableBatch("t.events.app", 0, 1, 3, "zstd", "x")
    calls: list[tuple[str, Any, asyncio.AbstractEventLoop]] = []

    async def main() -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        class FaustConsumer:
            async def _add_gap(self, tp: TP, first: int, last: int) -> None:
                calls.append(("gap", (tp, first, last), asyncio.get_running_loop()))

        async def hook(batch: UndecodableBatch) -> None:
            calls.append(("dlq", batch, asyncio.get_running_loop()))
            done.set_result(None)

        app = SimpleNamespace(**{undecodable.APP_HOOK: hook})
        args = (app, FaustConsumer(), loop, skipped)
        thread = threading.Thread(target=undecodable.hand_over, args=args)
        thread.start()
        thread.join()
        await asyncio.wait_for(done, 5)
        return loop

    loop = asyncio.run(main())
    assert calls == [("gap", (TP("t.events.app", 0), 1, 3), loop), ("dlq", skipped, loop)]
