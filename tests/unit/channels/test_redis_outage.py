"""Redis unreachable: the dispatcher waits, then finishes without losing or doubling the send.

A private redis-server is frozen with SIGSTOP (clients time out, as when the network or the
server is gone) and thawed with SIGCONT, so its data survives: the point is what the dispatcher
does while it cannot reach Redis.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from omnistream import devstack
from omnistream.channels.dispatcher import Dispatcher
from omnistream.channels.settings import ChannelSettings
from omnistream.observability.metrics import REGISTRY
from omnistream.ports import Outgoing, ProviderResult
from omnistream.storage.redis_caps import RedisCapStore
from omnistream.storage.redis_dedup import RedisDedupStore
from tests.unit.channels.factory import T0, ScriptedProvider, make_send, types

pytestmark = pytest.mark.integration


@pytest.fixture
def private_redis() -> Iterator[devstack.EmbeddedServer]:
    server = devstack.start_redis()
    try:
        yield server
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()


@pytest.fixture
async def client(private_redis: devstack.EmbeddedServer) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis.from_url(
        private_redis.url, socket_timeout=0.2, socket_connect_timeout=0.2
    )
    try:
        yield redis
    finally:
        await redis.aclose()


def errors() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "omnistream_channel_redis_errors"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def dispatcher(client: aioredis.Redis, provider: ScriptedProvider) -> Dispatcher:
    return Dispatcher(
        providers={"email": provider},
        dedup=RedisDedupStore(client),
        caps_store=RedisCapStore(client),
        settings=ChannelSettings(redis_backoff_max_s=0.1),
    )


async def wait_until(condition: object, limit: float = 10.0) -> None:
    for _ in range(int(limit / 0.02)):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_waits_for_redis_before_claiming(
    private_redis: devstack.EmbeddedServer, client: aioredis.Redis
) -> None:
    provider = ScriptedProvider()
    before = errors()
    os.kill(private_redis.proc.pid, signal.SIGSTOP)
    task = asyncio.create_task(dispatcher(client, provider).handle(make_send(), T0))
    await wait_until(lambda: errors() >= before + 3)
    assert not task.done()
    assert provider.calls == []  # nothing is sent without a claim
    os.kill(private_redis.proc.pid, signal.SIGCONT)
    result = await asyncio.wait_for(task, 10)
    assert types(result) == ["message_sent"]
    assert len(provider.calls) == 1


async def test_redis_lost_after_the_provider_acked_does_not_send_twice(
    private_redis: devstack.EmbeddedServer, client: aioredis.Redis
) -> None:
    class FreezeRedisOnSend(ScriptedProvider):
        async def send(self, outgoing: Outgoing) -> ProviderResult:
            os.kill(private_redis.proc.pid, signal.SIGSTOP)  # Redis goes away mid-send
            return await super().send(outgoing)

    provider = FreezeRedisOnSend()
    before = errors()
    task = asyncio.create_task(dispatcher(client, provider).handle(make_send(), T0))
    await wait_until(lambda: errors() >= before + 3)
    assert not task.done()  # waiting to record the send as done
    os.kill(private_redis.proc.pid, signal.SIGCONT)
    first = await asyncio.wait_for(task, 10)
    assert types(first) == ["message_sent"]
    # Kafka redelivers the command (say the worker restarted): answered, not sent again.
    again = await dispatcher(client, provider).handle(make_send(), T0)
    assert again.outcomes == first.outcomes
    assert len(provider.calls) == 1
