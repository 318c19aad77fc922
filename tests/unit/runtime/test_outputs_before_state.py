"""The customer agent's ordering guarantees, without a broker: a row is written (once per batch)
only after the broker acknowledged the records its batch produced, its inputs are acked only
after that, and a failing record goes to the DLQ with the error instead of being acked and lost
(what Faust does when an agent raises)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from omnistream.clock import utcnow
from omnistream.domain.state import CustomerState
from omnistream.runtime.batch import CustomerBatch
from omnistream.runtime.customers import on_event
from omnistream.runtime.dlq import INTERNAL_ERROR, DeadLetter, guarded
from omnistream.runtime.timers import TimerIndex
from tests.unit.journey.helpers import catalog_of, ev

WELCOME = """
id: welcome
name: Welcome
trigger: {event: signed_up}
steps:
  - id: hello
    type: send
    channels: [email]
    category: transactional
    content:
      email: {subject: "Hi", body: "Welcome"}
"""


@dataclass
class FakeTopic:
    """Records what was produced; each record's delivery is a future the test resolves."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[asyncio.Future[None]] = field(default_factory=list)

    async def send(self, **record: Any) -> asyncio.Future[None]:
        self.sent.append(record)
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery


def fake_runtime(tmp_path: Path) -> Any:
    return SimpleNamespace(
        catalog=catalog_of(tmp_path, WELCOME),
        customers={},
        aliases={},
        timers=TimerIndex(),
        topics=SimpleNamespace(
            sends={"email": FakeTopic()},
            customer_events=FakeTopic(),
            dlq=FakeTopic(),
            journey_events=None,
        ),
        clock=utcnow,
        step_observers=[],
    )


def message(value: bytes = b"{}") -> Any:
    return SimpleNamespace(
        topic="t.customer-events", partition=2, offset=41, key=b"c1", value=value
    )


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class FakeInput:
    """A Faust event as the batch sees it: something to ack once its row is written."""

    def __init__(self) -> None:
        self.acked = False

    def ack(self) -> bool:
        self.acked = True
        return True


async def handled(runtime: Any) -> tuple[CustomerBatch, FakeInput]:
    """One signed_up event handled into a batch that flushes only when told to."""

    async def fail(exc: BaseException) -> None:
        raise AssertionError(f"unexpected flush error {exc!r}")

    batch = CustomerBatch(runtime.customers, max_records=100, max_age_s=60, on_error=fail)
    source = FakeInput()
    batch.hold(source)
    await on_event(runtime, batch, b"c1", ev("signed_up"), message())
    return batch, source


def test_the_row_waits_for_the_broker_to_take_the_send(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    email: FakeTopic = runtime.topics.sends["email"]

    async def main() -> None:
        batch, source = await handled(runtime)
        assert len(email.sent) == 1  # the send command is produced at once ...
        assert batch.row(b"c1") is not None  # ... later inputs of the batch see the row ...
        flushing = asyncio.create_task(batch.flush())
        await settle()
        assert b"c1" not in runtime.customers  # ... but it is written after the acknowledgement
        assert not flushing.done() and not source.acked
        email.deliveries[0].set_result(None)
        await flushing
        row = CustomerState.from_bytes(runtime.customers[b"c1"])
        assert row.recent_event_ids  # the event is recorded only now
        assert source.acked  # and only then may its offset be committed

    asyncio.run(main())


def test_an_unacknowledged_send_leaves_the_row_unwritten(tmp_path: Path) -> None:
    """The flush fails (the worker then stops, ``runtime/customers.py``): the row is not
    written and the input is not acked, so its redelivery runs the journey again."""
    runtime = fake_runtime(tmp_path)
    email: FakeTopic = runtime.topics.sends["email"]

    async def main() -> None:
        batch, source = await handled(runtime)
        flushing = asyncio.create_task(batch.flush())
        await settle()
        email.deliveries[0].set_exception(RuntimeError("broker gone"))
        with pytest.raises(RuntimeError, match="broker gone"):
            await flushing
        assert b"c1" not in runtime.customers
        assert not source.acked

    asyncio.run(main())


def test_rows_are_written_once_per_batch(tmp_path: Path) -> None:
    """Two inputs of one customer in a batch: one decode, one write, both acked."""
    runtime = fake_runtime(tmp_path)
    writes: list[bytes] = []

    class CountingTable(dict[bytes, bytes]):
        def __setitem__(self, key: bytes, value: bytes) -> None:
            writes.append(key)
            super().__setitem__(key, value)

    runtime.customers = CountingTable()

    async def main() -> None:
        batch, first = await handled(runtime)
        second = FakeInput()
        batch.hold(second)
        await on_event(runtime, batch, b"c1", ev("page_viewed"), message())
        for delivery in runtime.topics.sends["email"].deliveries:
            delivery.set_result(None)
        await batch.flush()
        assert writes == [b"c1"]
        assert len(CustomerState.from_bytes(runtime.customers[b"c1"]).recent_event_ids) == 2
        assert first.acked and second.acked

    asyncio.run(main())


def test_a_failing_record_goes_to_the_dlq_with_its_error(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    dlq: FakeTopic = runtime.topics.dlq

    async def broken(_message: Any) -> None:
        raise KeyError("no such thing")

    asyncio.run(guarded(runtime, "channel", message(b"raw bytes"), broken))
    assert len(dlq.sent) == 1
    record = dlq.sent[0]
    assert record["value"] == b"raw bytes" and record["key"] == b"c1"
    letter = DeadLetter.from_headers(record["headers"])
    assert letter.reason == INTERNAL_ERROR
    assert letter.detail == "channel: KeyError: 'no such thing'"
    assert (letter.topic, letter.partition, letter.offset) == ("t.customer-events", 2, 41)


def test_a_cancelled_record_is_not_dead_lettered(tmp_path: Path) -> None:
    """Stopping the worker cancels the agent: that is not an error of the record."""
    runtime = fake_runtime(tmp_path)

    async def cancelled(_message: Any) -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(guarded(runtime, "customer", message(), cancelled))
    assert runtime.topics.dlq.sent == []


def test_a_good_record_is_not_dead_lettered(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    seen: list[Any] = []

    async def fine(msg: Any) -> None:
        seen.append(msg)

    asyncio.run(guarded(runtime, "ingest", message(), fine))
    assert len(seen) == 1 and runtime.topics.dlq.sent == []
