"""A batch queued for a topic must reach the broker when the producer first sends to a new topic.

aiokafka's client tracks no topic until a send to an unknown one, and then asks the broker for
that topic's metadata only: topics it knew from its first (all-topics) metadata drop out, and a
batch queued for one of them waits for a leader forever. omnistream's ``TrackingProducer`` tracks
every topic it sends to. The second test pins the aiokafka behaviour itself, so the day aiokafka
fixes it, it fails and says the workaround can go.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from omnistream.runtime.transport import TrackingProducer

from .conftest import Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

LINGER_MS = 50  # long enough that the first batch is still queued at the second send


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()


async def queued_send_then_new_topic(
    stack: Stack, producer_type: type[AIOKafkaProducer], wait_s: float
) -> bool:
    """Queue a record for a topic known at start, send to a topic created later; True if the
    first record was acknowledged within ``wait_s``."""
    bootstrap = stack.broker_url.removeprefix("kafka://")
    old, new = stack.topic("known-at-start"), stack.topic("created-later")
    await create_topic(bootstrap, old)
    producer = producer_type(bootstrap_servers=bootstrap, linger_ms=LINGER_MS)
    await producer.start()
    try:
        await create_topic(bootstrap, new)
        queued = await producer.send(old, b"queued")
        await asyncio.wait_for(await producer.send(new, b"first to new"), 10)
        try:
            await asyncio.wait_for(asyncio.shield(queued), wait_s)
        except TimeoutError:
            # its sender spins on the unknown leader, and stop() would wait for it
            producer._sender._sender_task.cancel()
            return False
        return True
    finally:
        await producer.stop()


def test_tracking_producer_delivers_the_queued_batch(stack: Stack) -> None:
    assert asyncio.run(queued_send_then_new_topic(stack, TrackingProducer, wait_s=10))


def test_plain_aiokafka_still_strands_the_queued_batch(stack: Stack) -> None:
    delivered = asyncio.run(queued_send_then_new_topic(stack, AIOKafkaProducer, wait_s=3))
    assert not delivered, "aiokafka delivered it: TrackingProducer may no longer be needed"
