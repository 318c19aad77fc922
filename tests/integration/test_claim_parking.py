"""A send whose claim another worker holds does not stall its channel (issue 22).

Before: the channel agent (one record at a time) polled the held claim until it finished, lapsed
(``in_flight_ttl_s``, 120 s) or its owner's lease lapsed, and every later send on that channel,
for every customer, queued behind it (a kill during a send made 42 pushes 106-121 s late). Now
the send is put back at the end of its topic after ``held_claim_wait_s`` and the others go on.
The holder here is a live owner that never finishes: a lease and an in-flight marker written to
the worker's Redis as another worker's would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis
from aiokafka import AIOKafkaProducer

from omnistream.domain.commands import Message, Send
from omnistream.redis_keys import owner_lease, send_claim

from .conftest import Stack, Worker, wait_until
from .test_walking_skeleton import counter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def email(stack: Stack, customer: str) -> Send:
    key = f"{stack.prefix}{customer}"
    return Send(
        send_id=f"{key}-send",
        customer_key=key,
        journey_id="receipts",
        journey_version="1",
        instance_id="1",
        step_id="confirm",
        chain=("email",),
        category="transactional",
        messages={"email": Message(subject="Your order", body="Thanks")},
        addresses={"email": f"{customer}@example.test"},
        caused_by=f"{key}-order",
        caused_at=datetime.now(UTC),
    )


async def produce(stack: Stack, sends: list[Send]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker_url.removeprefix("kafka://"))
    await producer.start()
    try:
        for send in sends:  # one at a time: the held one is first in its partition and topic
            await producer.send_and_wait(
                stack.topic("send.email"), send.to_json(), key=send.customer_key.encode()
            )
    finally:
        await producer.stop()


def sent_ids(stack: Stack) -> list[str]:
    return [str(line["send_id"]) for line in stack.sends()]


def test_a_held_claim_does_not_stall_the_channel_and_is_sent_once_released(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker("w0", OMNISTREAM_PARTITIONS="1")  # one partition: all in one line
    held, *others = [email(stack, c) for c in ("a", "b", "c", "d", "e")]
    store = redis.Redis.from_url(stack.redis_url)
    lease = owner_lease(stack.redis_prefix, "w-other")
    claim = send_claim(stack.redis_prefix, held.customer_key, held.send_id, 0)
    try:
        store.set(lease, b"1", px=120_000)  # a live owner...
        store.set(claim, b"~w-other/1", px=120_000)  # ...mid-send, for 120 s
        asyncio.run(produce(stack, [held, *others]))

        wanted = {s.send_id for s in others}
        wait_until(
            lambda: wanted <= set(sent_ids(stack)),
            20,
            lambda: f"sends behind the held one: {sent_ids(stack)}\n{worker.log_tail()}",
        )
        assert held.send_id not in sent_ids(stack)  # still held by the live owner
        held_count = counter(
            worker.metrics(), "omnistream_channel_sends_held_total", channel="email"
        )
        assert held_count >= 1

        store.delete(lease)  # the owner died: its claim is taken over and the send goes out
        wait_until(lambda: held.send_id in sent_ids(stack), 20, lambda: worker.log_tail())
    finally:
        store.delete(lease, claim)
        store.close()
    assert sorted(sent_ids(stack)) == sorted(s.send_id for s in [held, *others])  # each once
