"""The customer agent's ordering guarantees, without a broker: a row is written only after the
broker acknowledged the records its event produced, and a failing record goes to the DLQ with
the error instead of being acked and lost (what Faust does when an agent raises)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from omnistream.domain.events import Event
from omnistream.domain.state import CustomerState
from omnistream.runtime.customers import on_event
from omnistream.runtime.dlq import INTERNAL_ERROR, DeadLetter, guarded
from omnistream.runtime.rows import RowWriter
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
    runtime = SimpleNamespace(
        catalog=catalog_of(tmp_path, WELCOME),
        customers={},
        aliases={},
        timers=TimerIndex(),
        topics=SimpleNamespace(
            sends={"email": FakeTopic()}, customer_events=FakeTopic(), dlq=FakeTopic()
        ),
    )
    runtime.rows = RowWriter(runtime)  # type: ignore[arg-type]
    return runtime


def message(value: bytes = b"{}") -> Any:
    return SimpleNamespace(
        topic="t.customer-events", partition=2, offset=41, key=b"c1", value=value
    )


def record(value: bytes = b"{}") -> Any:
    """A Faust event: what the row writer acks."""
    return SimpleNamespace(message=message(value))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def with_id(event: Event, event_id: str) -> Event:
    return event.model_copy(update={"event_id": event_id})


def start_writer(runtime: Any) -> list[Any]:
    acked: list[Any] = []

    async def ack(event: Any) -> None:
        acked.append(event)

    runtime.rows.start(ack)
    return acked


def test_the_row_waits_for_the_broker_to_take_the_send(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    email: FakeTopic = runtime.topics.sends["email"]

    async def main() -> None:
        acked = start_writer(runtime)
        signup = record()
        await on_event(runtime, b"c1", ev("signed_up"), signup)  # the agent goes on at once
        assert runtime.rows.holds(signup)  # the writer, not the agent, acks this input
        await settle()
        assert len(email.sent) == 1  # the send command is produced ...
        assert b"c1" not in runtime.customers  # ... but the row waits for its acknowledgement
        assert acked == []  # ... and so does the input's offset
        email.deliveries[0].set_result(None)
        await settle()
        row = CustomerState.from_bytes(runtime.customers[b"c1"])
        assert row.recent_event_ids  # the event is recorded only now
        assert acked == [signup]

    asyncio.run(main())


def test_the_next_input_sees_the_row_that_waits(tmp_path: Path) -> None:
    """A customer's second event is handled while the first one's row waits for its send: it
    must build on that row, and the rows are written in input order."""
    runtime = fake_runtime(tmp_path)
    email: FakeTopic = runtime.topics.sends["email"]

    async def main() -> None:
        acked = start_writer(runtime)
        first, second = record(), record()
        await on_event(runtime, b"c1", with_id(ev("signed_up"), "e1"), first)
        await on_event(runtime, b"c1", with_id(ev("page_viewed"), "e2"), second)
        await on_event(runtime, b"c1", with_id(ev("signed_up"), "e1"), record())  # repeated
        await settle()
        assert b"c1" not in runtime.customers and acked == []
        assert len(email.sent) == 1  # the repeated sign-up was known from the waiting row
        email.deliveries[0].set_result(None)
        await settle()
        row = CustomerState.from_bytes(runtime.customers[b"c1"])
        assert row.recent_event_ids[-2:] == ["e1", "e2"]
        assert acked == [first, second]

    asyncio.run(main())


def test_an_unacknowledged_send_leaves_the_row_unwritten(tmp_path: Path) -> None:
    """The input goes to the DLQ with the error, and a redelivery of the event would run the
    journey again (the row does not know the event)."""
    runtime = fake_runtime(tmp_path)
    email: FakeTopic = runtime.topics.sends["email"]
    dlq: FakeTopic = runtime.topics.dlq

    async def main() -> None:
        acked = start_writer(runtime)
        signup = record()
        await on_event(runtime, b"c1", ev("signed_up"), signup)
        await settle()
        email.deliveries[0].set_exception(RuntimeError("broker gone"))
        await settle()
        assert b"c1" not in runtime.customers
        assert runtime.rows.latest(b"c1") is None
        letter = DeadLetter.from_headers(dlq.sent[0]["headers"])
        assert letter.reason == INTERNAL_ERROR
        assert "broker gone" in letter.detail
        assert acked == [signup]

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
