"""The DLQ's edges (issue 15 items 3 and 8): a record too big to copy whole still reaches the DLQ
(truncated, with its size and hash), a failing DLQ send never raises out of ``guarded``, and an
outage (Redis, Kafka) is retried in place with backoff instead of being dead-lettered."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from faust.exceptions import ProducerSendError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from omnistream.channels.retry import RedisUnavailable
from omnistream.observability.metrics import REGISTRY
from omnistream.runtime.dlq import (
    INTERNAL_ERROR,
    Backoff,
    DeadLetter,
    Transient,
    dead_letter,
    dlq_record,
    guarded,
    is_transient,
)
from omnistream.runtime.faust_types import Message

LIMIT = 1_000_000  # Faust's default producer_max_request_size
BIG = 999_800


def big_value(size: int = BIG) -> bytes:
    """Not one repeated byte, so a wrong hash or a shifted prefix shows."""
    return (b"0123456789abcdef" * (size // 16 + 1))[:size]


def letter() -> DeadLetter:
    return DeadLetter(
        reason="invalid",
        detail="x" * 2000,  # cut to its cap in the headers
        topic="t.events.site",
        partition=3,
        offset=17,
        rejected_at=datetime(2026, 12, 3, tzinfo=UTC),
    )


def size_on_the_wire(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    """What aiokafka's producer compares with ``max_request_size`` before it sends."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers))


@dataclass
class SizedTopic:
    """A DLQ topic that refuses what aiokafka's producer refuses, as Faust reports it; each
    accepted record's delivery is a future the test may fail. ``failures`` are raised first."""

    max_request_size: int = LIMIT
    sent: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[asyncio.Future[None]] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)

    async def send(self, **record: Any) -> asyncio.Future[None]:
        if self.failures:
            raise self.failures.pop(0)
        size = size_on_the_wire(record["key"], record["value"], record["headers"])
        if size > self.max_request_size:
            raise ProducerSendError("Error while sending") from MessageSizeTooLargeError(size)
        self.sent.append(record)
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery


def runtime_with(dlq: SizedTopic) -> Any:
    return SimpleNamespace(
        app=SimpleNamespace(conf=SimpleNamespace(producer_max_request_size=dlq.max_request_size)),
        topics=SimpleNamespace(dlq=dlq),
    )


@dataclass(frozen=True)
class FakeMessage:
    """A consumed record as the DLQ reads it (``runtime/faust_types.Message``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def message(value: bytes = b"{}") -> Message:
    return FakeMessage(topic="t.events.site", partition=3, offset=17, key=b"k1", value=value)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def no_wait(delays: list[float]) -> Any:
    async def sleep(delay: float) -> None:
        delays.append(delay)

    return sleep


# --- the DLQ record ---------------------------------------------------------------------------


def test_a_record_that_fits_is_copied_byte_for_byte() -> None:
    record = dlq_record(b"k1", b"raw bytes", letter(), LIMIT)
    assert (record.key, record.value) == (b"k1", b"raw bytes")
    assert record.headers == letter().headers()
    assert not record.truncated


def test_a_999_800_byte_record_is_truncated_with_its_size_and_hash() -> None:
    value = big_value()
    record = dlq_record(b"k1", value, letter(), LIMIT)

    assert record.truncated
    assert size_on_the_wire(record.key, record.value, record.headers) <= LIMIT
    assert value.startswith(record.value) and len(record.value) > BIG - 10_000
    headers = dict(record.headers)
    assert headers["omnistream.truncated"] == b"1"
    assert headers["omnistream.original_size"] == str(BIG).encode()
    assert headers["omnistream.sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert DeadLetter.from_headers(record.headers) == replace(letter(), detail="x" * 1000)
    assert record.key == b"k1"


def test_a_huge_key_is_truncated_too() -> None:
    key = big_value(LIMIT)
    record = dlq_record(key, b"v", letter(), LIMIT)
    assert size_on_the_wire(record.key, record.value, record.headers) <= LIMIT
    headers = dict(record.headers)
    assert headers["omnistream.original_key_size"] == str(LIMIT).encode()
    assert headers["omnistream.key_sha256"] == hashlib.sha256(key).hexdigest().encode()
    assert record.key is not None and key.startswith(record.key)


def test_dead_letter_sends_a_near_1mb_record_truncated() -> None:
    dlq = SizedTopic()
    value = big_value()
    before = sample("omnistream_dlq_truncated_total")
    asyncio.run(dead_letter(runtime_with(dlq), message(value), "invalid", "not json"))
    (record,) = dlq.sent
    headers = dict(record["headers"])
    assert headers["omnistream.original_size"] == str(BIG).encode()
    assert headers["omnistream.sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert value.startswith(record["value"])
    assert sample("omnistream_dlq_truncated_total") == before + 1


# --- a failing DLQ send ----------------------------------------------------------------------


def test_a_failing_dlq_send_does_not_raise_out_of_guarded() -> None:
    dlq = SizedTopic(failures=[RuntimeError("broker says no")])
    before = sample("omnistream_dlq_send_failures_total", phase="send")

    async def broken(_message: Any) -> None:
        raise ValueError("bad data")

    asyncio.run(guarded(runtime_with(dlq), "ingest", message(), broken))
    assert dlq.sent == []
    assert sample("omnistream_dlq_send_failures_total", phase="send") == before + 1


def test_a_transient_dlq_send_failure_is_retried() -> None:
    blip = ProducerSendError("Error while sending")  # how Faust reports aiokafka's errors
    blip.__cause__ = KafkaConnectionError()
    dlq = SizedTopic(failures=[blip])
    delays: list[float] = []
    asyncio.run(
        dead_letter(runtime_with(dlq), message(b"v"), "invalid", "d", sleep=no_wait(delays))
    )
    assert len(dlq.sent) == 1 and len(delays) == 1


def test_a_failed_dlq_delivery_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    dlq = SizedTopic()
    before = sample("omnistream_dlq_send_failures_total", phase="delivery")

    async def main() -> None:
        await dead_letter(runtime_with(dlq), message(b"v"), "invalid", "d")
        dlq.deliveries[0].set_exception(KafkaConnectionError())
        await asyncio.sleep(0)

    asyncio.run(main())
    assert sample("omnistream_dlq_send_failures_total", phase="delivery") == before + 1
    assert "t.events.site[3]@17" in caplog.text


# --- guarded: outages are retried, data errors dead-lettered once ------------------------------


def test_guarded_retries_a_transient_error_then_succeeds_without_dead_lettering() -> None:
    dlq = SizedTopic()
    calls: list[int] = []
    before = sample("omnistream_transient_retries_total", stage="customer")

    async def flaky(_message: Any) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RedisConnectionError("Connection refused")

    asyncio.run(guarded(runtime_with(dlq), "customer", message(), flaky))  # real (short) sleeps
    assert len(calls) == 3
    assert dlq.sent == []
    assert sample("omnistream_transient_retries_total", stage="customer") == before + 2


def test_a_data_error_is_dead_lettered_once() -> None:
    dlq = SizedTopic()
    calls: list[int] = []

    async def broken(_message: Any) -> None:
        calls.append(1)
        raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    asyncio.run(guarded(runtime_with(dlq), "channel", message(b"raw"), broken))
    assert len(calls) == 1
    (record,) = dlq.sent
    assert record["value"] == b"raw"
    assert DeadLetter.from_headers(record["headers"]).reason == INTERNAL_ERROR


def test_backoff_is_exponential_and_capped() -> None:
    dlq = SizedTopic()
    delays: list[float] = []
    calls: list[int] = []

    async def down_for_a_while(_message: Any) -> None:
        calls.append(1)
        if len(calls) <= 8:
            raise Transient("kafka leader moving")

    backoff = Backoff(base_s=0.1, max_s=1.0)
    asyncio.run(
        guarded(
            runtime_with(dlq), "ingest", message(), down_for_a_while,
            backoff=backoff, sleep=no_wait(delays),
        )
    )  # fmt: skip
    assert len(delays) == 8 and dlq.sent == []
    for retry, delay in enumerate(delays):
        ceiling = min(1.0, 0.1 * 2**retry)
        assert ceiling / 2 <= delay <= ceiling


def test_a_retrying_record_stays_cancellable() -> None:
    dlq = SizedTopic()

    async def never_up(_message: Any) -> None:
        raise OSError("connection reset")

    async def main() -> None:
        task = asyncio.ensure_future(guarded(runtime_with(dlq), "customer", message(), never_up))
        await asyncio.sleep(0.3)  # a few retries
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert dlq.sent == []


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (RedisConnectionError("down"), True),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (RedisUnavailable("redis unreachable for 30s"), True),
        (Transient("explicit"), True),
        (KafkaConnectionError(), True),
        (ValueError("bad"), False),
        (KeyError("x"), False),
        (ResponseError("WRONGTYPE"), False),
        (MessageSizeTooLargeError(), False),
    ],
)
def test_transient_classification(exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient
    wrapped = ProducerSendError("Error while sending")  # how Faust reports aiokafka's errors
    wrapped.__cause__ = exc
    assert is_transient(wrapped) is transient
