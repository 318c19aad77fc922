"""Dispatchers racing for a customer's last cap slot: exactly one sends.

The same race is run with a naive read-then-increment store (below, written for this test) to
show that the race is real: with it, several dispatchers pass the check before any of them
counts, and the customer gets more messages than the cap allows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis

from omnistream.channels.dispatcher import Dispatcher
from omnistream.channels.settings import ChannelSettings
from omnistream.policies.caps import CapsPolicy
from omnistream.ports import CapCounter, CapStore, Claim
from omnistream.storage.memory import MemoryCapStore, MemoryDedupStore
from omnistream.storage.redis_caps import RedisCapStore
from omnistream.storage.redis_dedup import IN_FLIGHT, RedisDedupStore
from tests.unit.channels.factory import T0, ScriptedProvider, make_send

RACERS = 24
POLICY = CapsPolicy(per_channel=["3/day"], across_channels=["10/week"], per_journey=[])


class NaiveRedisCapStore:
    """What not to do: read every window, then count. Two round trips with a gap between."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def claim_within_caps(
        self,
        key: str,
        token: str,
        ttl_ms: int,
        member: str,
        counters: Sequence[CapCounter],
        now_ms: int,
    ) -> Claim:
        for index, counter in enumerate(counters):
            if await self._redis.zcard(counter.key) >= counter.limit:
                return Claim("capped", counter=index)
        for counter in counters:
            await self._redis.zadd(counter.key, {member: now_ms})
        await self._redis.set(key, IN_FLIGHT + token.encode(), px=ttl_ms)
        return Claim("claimed")

    async def refund(self, member: str, counters: Sequence[CapCounter]) -> None:
        return None


async def connected(redis_url: str) -> list[aioredis.Redis]:
    """One client per racer, each with its connection open (as in long-running workers)."""
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(RACERS)]
    await asyncio.gather(*(client.ping() for client in clients))
    return clients


async def race(caps_stores: Sequence[CapStore], dedups: Sequence[object]) -> int:
    """Two sends use two of the three slots; then every racer tries its own send at once."""
    prefix = f"race{uuid.uuid4().hex[:8]}:"
    settings = ChannelSettings(redis_prefix=prefix)
    provider = ScriptedProvider()
    dispatchers = [
        Dispatcher(
            providers={"email": provider},
            dedup=dedup,  # type: ignore[arg-type]
            caps_store=caps,
            caps=POLICY,
            settings=settings,
        )
        for caps, dedup in zip(caps_stores, dedups, strict=True)
    ]
    for n in range(2):
        await dispatchers[0].handle(make_send(f"warmup-{n}", chain=("email",)), T0)
    assert len(provider.calls) == 2
    sends = [make_send(f"racer-{n}", chain=("email",)) for n in range(len(dispatchers))]
    results = await asyncio.gather(
        *(d.handle(s, T0) for d, s in zip(dispatchers, sends, strict=True))
    )
    sent = sum(1 for r in results for e in r.outcomes if e.type == "message_sent")
    suppressed = sum(1 for r in results for e in r.outcomes if e.type == "message_suppressed")
    assert sent + suppressed == len(dispatchers)  # every racer ended in an outcome
    assert len(provider.calls) == 2 + sent
    return sent


@pytest.mark.integration
async def test_racing_dispatchers_on_separate_connections_send_exactly_once(
    redis_url: str,
) -> None:
    clients = await connected(redis_url)
    try:
        sent = await race(
            [RedisCapStore(c) for c in clients], [RedisDedupStore(c) for c in clients]
        )
    finally:
        for client in clients:
            await client.aclose()
    assert sent == 1


@pytest.mark.integration
async def test_naive_read_then_increment_lets_several_through(redis_url: str) -> None:
    clients = await connected(redis_url)
    try:
        sent = await race(
            [NaiveRedisCapStore(c) for c in clients], [RedisDedupStore(c) for c in clients]
        )
    finally:
        for client in clients:
            await client.aclose()
    assert sent > 1  # the cap allowed one more; the naive check let `sent` through


async def test_racing_dispatchers_on_the_memory_store_send_exactly_once() -> None:
    dedup = MemoryDedupStore()
    caps = MemoryCapStore(dedup)
    assert await race([caps] * RACERS, [dedup] * RACERS) == 1
