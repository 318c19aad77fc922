"""Compressed batches from a librdkafka producer reach a real worker (issue 15 item 1).

Real producers compress (librdkafka's ``compression.type``), and the broker hands the batches
on as they came (Tansu does: a plain aiokafka consumer without codec libraries raised
``UnsupportedCodecError`` for the snappy, lz4 and zstd batches, and decoded the gzip one).
Before: the worker's fetcher raised ``UnsupportedCodecError: Libraries for snappy compression
codec not found`` and the worker exited; every worker that took the partition died the same way.

A batch that still cannot be decoded (a codec without its library, a bad CRC, a corrupt body:
Tansu accepts the last two) is skipped, counted, dead-lettered (reason ``undecodable_batch``), and
the records around it are processed and committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import subprocess
from collections.abc import Callable
from typing import Any

import aiokafka.codec
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import UnsupportedCodecError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.util import calc_crc32c
from confluent_kafka import KafkaError, Message, Producer

from omnistream.runtime.dlq import DeadLetter
from omnistream.runtime.partitions import partition_of
from omnistream.runtime.undecodable import UNDECODABLE_BATCH, UndecodableBatch, tolerate
from omnistream.sources.demo import source_key

from .conftest import Stack, Worker, wait_until
from .test_metrics_exact import samples, total, value

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

CODECS = ("gzip", "snappy", "lz4", "zstd")
PER_CODEC = 25
CUSTOMERS_PER_CODEC = 5  # 5 events per customer: several events in each partition's batch


def event(event_id: str, customer: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "type": "page_viewed",
            "source": "site",
            "customer_id": customer,
            "timestamp": "2026-11-24T10:00:00Z",
            "properties": {"url": f"/{event_id}"},
        }
    )


def events(codec: str) -> list[bytes]:
    return [event(f"{codec}-{n}", f"c-{codec}-{n % CUSTOMERS_PER_CODEC}") for n in range(PER_CODEC)]


def metrics_of(worker: Worker) -> str:
    """The worker's /metrics; when it cannot answer because it exited, fail with its log."""
    try:
        return worker.metrics()
    except OSError:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.proc.wait(5)
        if worker.proc.returncode is None:
            raise
        pytest.fail(f"the worker exited with {worker.proc.returncode}:\n{worker.log_tail()}")


def produce_compressed(stack: Stack, codec: str, values: list[bytes]) -> None:
    """librdkafka batches every record of a partition produced within ``linger.ms`` into one
    compressed batch."""
    producer = Producer(
        {
            "bootstrap.servers": stack.broker_url.removeprefix("kafka://"),
            "compression.type": codec,
            "linger.ms": 200,
            "acks": "all",
        }
    )
    failed: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failed.append(err)

    for raw in values:
        producer.produce(
            stack.topic("events.site"), value=raw, key=source_key(raw), on_delivery=on_delivery
        )
    assert producer.flush(30) == 0, f"{codec}: records still queued after 30 s"
    assert not failed, f"{codec}: {failed}"


def test_gzip_snappy_lz4_and_zstd_batches_are_all_ingested(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker()
    for codec in CODECS:
        produce_compressed(stack, codec, events(codec))

    expected = PER_CODEC * len(CODECS)

    def ingested() -> float:
        return total(metrics_of(worker), "omnistream_events_ingested_total")

    wait_until(lambda: ingested() >= expected, 60, lambda: worker.log_tail())
    text = worker.metrics()
    assert total(text, "omnistream_events_ingested_total") == expected
    assert total(text, "omnistream_events_rejected_total") == 0  # nothing dead-lettered
    assert total(text, "omnistream_undecodable_batches_total") == 0
    assert worker.proc.poll() is None


# --- batches that cannot be decoded ----------------------------------------------------------

HEADER = 61  # bytes of a v2 record batch header; the CRC covers everything from ATTRIBUTES on
CRC, ATTRIBUTES = 17, 21
PARTITIONS = 4  # the stack's OMNISTREAM_PARTITIONS
LAG = "omnistream_consumer_lag_records"  # highwater - committed: 0 once committed past the gap


def corrupt_body(buffer: bytearray) -> None:
    """Garble the compressed records, keep the CRC valid: the broker stores the batch."""
    for i in range(HEADER + 10, HEADER + 40):
        buffer[i] ^= 0x5A
    struct.pack_into(">I", buffer, CRC, calc_crc32c(bytes(buffer[ATTRIBUTES:])))


def break_crc(buffer: bytearray) -> None:
    buffer[-1] ^= 0xFF


def servers(stack: Stack) -> str:
    return stack.broker_url.removeprefix("kafka://")


async def produce_batch(
    stack: Stack,
    topic: str,
    partition: int,
    values: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    compression: str | None = None,
    damage: Callable[[bytearray], None] | None = None,
) -> None:
    """``values`` as one batch (one linger), damaged by ``damage`` in this process's producer
    just before it goes out: the broker and the worker see what a broken producer sends."""
    original = BatchBuilder._build

    def build(builder: Any) -> Any:
        fresh = builder._buffer is None
        buffer = original(builder)
        if fresh and damage is not None:
            damage(buffer)
        return buffer

    with monkeypatch.context() as patch:
        patch.setattr(BatchBuilder, "_build", build)
        producer = AIOKafkaProducer(
            bootstrap_servers=servers(stack), compression_type=compression, linger_ms=200
        )
        await producer.start()
        try:
            sent = [await producer.send(topic, v, key=b"k", partition=partition) for v in values]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()


async def read_topic(stack: Stack, topic: str, count: int, timeout: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers(stack), auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while len(records) < count:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return records


def test_a_real_consumer_skips_a_batch_whose_codec_library_is_missing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handling code on aiokafka's real fetcher and a real fetch: a snappy batch between two
    plain records, read as a consumer without cramjam reads it (``has_snappy`` false)."""
    topic = stack.topic("codec-probe")

    async def produce() -> None:
        await produce_batch(stack, topic, 0, [b"before"], monkeypatch)
        await produce_batch(stack, topic, 0, [b"s1", b"s2", b"s3"], monkeypatch, "snappy")
        await produce_batch(stack, topic, 0, [b"after"], monkeypatch)

    async def consume(tolerant: bool, reports: list[UndecodableBatch]) -> list[Any]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=servers(stack), auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        if tolerant:
            tolerate(consumer._fetcher, reports.append)
        records: list[Any] = []
        try:
            async with asyncio.timeout(20):
                while len(records) < 2:
                    for batch in (await consumer.getmany(timeout_ms=500)).values():
                        records.extend(batch)
        finally:
            await consumer.stop()
        return records

    asyncio.run(produce())
    monkeypatch.setattr(aiokafka.codec, "has_snappy", lambda: False)
    with pytest.raises(UnsupportedCodecError):  # the bug, on plain aiokafka
        asyncio.run(consume(tolerant=False, reports=[]))
    reports: list[UndecodableBatch] = []
    records = asyncio.run(consume(tolerant=True, reports=reports))
    assert [(r.offset, r.value) for r in records] == [(0, b"before"), (4, b"after")]
    assert [(r.first_offset, r.last_offset, r.codec) for r in reports] == [(1, 3, "snappy")]
    assert reports[0].error.startswith("UnsupportedCodecError")


def test_undecodable_batches_are_skipped_dead_lettered_and_committed_past(
    stack: Stack, start_worker: Callable[..., Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One partition gets: a good event (offset 0), a gzip batch with a corrupt body (1-3), a
    batch with a bad CRC (4-5), a good event (6). The worker ingests both good events, dead-
    letters one record per bad batch, stays up, and commits the partition to its end."""
    worker = start_worker()
    topic = stack.topic("events.site")
    key = b"c-after"
    partition = partition_of(key, PARTITIONS)
    first, last = (event(name, "c-after") for name in ("first", "last"))
    bad = [event(f"bad-{n}", "c-after") for n in range(5)]

    async def produce() -> None:
        await produce_batch(stack, topic, partition, [first], monkeypatch)
        await produce_batch(stack, topic, partition, bad[:3], monkeypatch, "gzip", corrupt_body)
        await produce_batch(stack, topic, partition, bad[3:], monkeypatch, None, break_crc)
        await produce_batch(stack, topic, partition, [last], monkeypatch)

    asyncio.run(produce())

    def settled() -> bool:
        text, p = metrics_of(worker), str(partition)
        return (
            total(text, "omnistream_events_ingested_total") >= 2
            and total(text, "omnistream_undecodable_batches_total") >= 2
            and samples(text).get((LAG, frozenset({"topic": topic, "partition": p}.items()))) == 0
            and value(text, "omnistream_dlq_records_total", reason=UNDECODABLE_BATCH) >= 2
        )

    wait_until(settled, 60, lambda: worker.metrics() + worker.log_tail())
    text = worker.metrics()
    assert total(text, "omnistream_events_ingested_total") == 2
    assert value(text, "omnistream_undecodable_batches_total", topic=topic) == 2
    assert total(text, "omnistream_events_rejected_total") == 2  # the two DLQ records, no more
    assert worker.proc.poll() is None

    letters = [
        DeadLetter.from_headers(list(r.headers))
        for r in asyncio.run(read_topic(stack, stack.topic("dlq"), 2, timeout=20))
    ]
    assert sorted((x.reason, x.topic, x.partition, x.offset) for x in letters) == [
        (UNDECODABLE_BATCH, topic, partition, 1),
        (UNDECODABLE_BATCH, topic, partition, 4),
    ]
    details = sorted(x.detail for x in letters)
    assert details[0].startswith("offsets 1-3 skipped, codec gzip: error: Error -3")
    assert details[1].startswith("offsets 4-5 skipped, codec none: CorruptRecordException")
