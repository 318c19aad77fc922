"""State before offsets (issue 22): the flush Faust runs before committing offsets must wait for
every table changelog record in its producer buffer to be acknowledged.

Faust's own flush gives up after 0.1 s without a record leaving the buffer and does not wait for
the one being handed over; here the hand-over is slow (an injected slow acknowledgement) and the
test checks that the flush returns only once the record is acknowledged, so a crash right after
the flush (where the offset commit happens) cannot have committed past a missing row.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faust.types.tuples import TP, FutureMessage, RecordMetadata

from omnistream.config import Settings
from omnistream.ops.kafka_security import KafkaSecurity
from omnistream.runtime.acks import ChangelogNotAcknowledged, UnackedRecords
from omnistream.runtime.app import _faust_app

SLOW_ACK_S = 0.5


@pytest.fixture
async def producer() -> AsyncIterator[Any]:
    """The worker's Faust producer (our transport driver), with only its buffer running and a
    broker that acknowledges each record ``SLOW_ACK_S`` after it is handed over."""
    app = _faust_app(Settings(app_id="acks-test", broker="kafka://127.0.0.1:1"), KafkaSecurity())
    producer = app.producer
    buffer = producer.buffer

    async def slow_hand_over(fut: FutureMessage) -> None:
        await asyncio.sleep(SLOW_ACK_S)
        if fut.message == "fail":
            fut.set_exception(OSError("broker gone"))
        else:
            fut.set_result(RecordMetadata(topic="t", partition=0, topic_partition=TP("t", 0),
                                          offset=1))  # fmt: skip

    buffer._send_pending = slow_hand_over  # type: ignore[method-assign]
    await buffer.start()
    try:
        yield producer
    finally:
        await buffer.stop()


async def test_flush_waits_for_a_slowly_acknowledged_changelog_record(producer: Any) -> None:
    record = FutureMessage("row")  # type: ignore[arg-type]
    producer.send_soon(record)
    await asyncio.sleep(0.01)  # the buffer's task has taken it: Faust's size is 0 again
    await asyncio.wait_for(producer.flush(), timeout=5)
    assert record.done(), "flush returned before the changelog record was acknowledged"


async def test_a_failed_changelog_record_stops_the_commit(producer: Any) -> None:
    producer.send_soon(FutureMessage("fail"))  # type: ignore[arg-type]
    with pytest.raises(ChangelogNotAcknowledged, match="broker gone"):
        await asyncio.wait_for(producer.flush(), timeout=5)
    await asyncio.wait_for(producer.flush(), timeout=5)  # reported once, then clean again


async def test_unacked_records_forget_what_was_acknowledged() -> None:
    unacked = UnackedRecords()
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    unacked.track(done)
    assert len(unacked) == 1
    done.set_result(1)
    await unacked.wait()
    assert len(unacked) == 0
