"""``true_end_offsets`` against the real broker: the end of a partition whose last record batch
holds several records, where ListOffsets answers short (Tansu: last batch's base + 1)."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from omnistream.runtime.end_offsets import true_end_offsets

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def _write_batches(servers: str, topic: str, batches: int, size: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=50)
    await producer.start()
    try:
        for _ in range(batches):  # each round is sent together: one record batch
            futures = [
                await producer.send(topic, b"v", key=b"k%d" % i, partition=0) for i in range(size)
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _ends(
    servers: str, topic: str
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int | None]]:
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    lister = AIOKafkaConsumer(bootstrap_servers=servers)
    await lister.start()
    try:
        listed = await lister.end_offsets(tps)
    finally:
        await lister.stop()
    checked = await true_end_offsets(AIOKafkaConsumer(bootstrap_servers=servers), listed)
    return listed, checked


def test_end_offsets_are_checked_by_fetching(broker_url: str) -> None:
    servers = broker_url.removeprefix("kafka://")
    topic = f"end-offsets-{secrets.token_hex(4)}"
    asyncio.run(_write_batches(servers, topic, batches=3, size=10))

    listed, checked = asyncio.run(_ends(servers, topic))

    full, empty = TopicPartition(topic, 0), TopicPartition(topic, 1)
    assert checked[full] == 30  # offsets 0-29 were written
    assert checked[empty] == listed[empty] == 0  # an empty partition is not fetched
    assert listed[full] <= 30  # what the broker lists (21 on Tansu), never more
