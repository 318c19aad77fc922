"""One set of store contracts, run against the in-memory stores and the Redis ones.

The Redis variant talks to the real redis-server of the ``redis_url`` session fixture; every test
uses its own key prefix, so tests never see each other's keys.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from omnistream.ports import CapStore, DedupStore, RateLimiter
from omnistream.storage.memory import MemoryCapStore, MemoryDedupStore, MemoryRateLimiter
from omnistream.storage.redis_caps import RedisCapStore
from omnistream.storage.redis_dedup import RedisDedupStore
from omnistream.storage.redis_ratelimit import RedisRateLimiter


@dataclass
class Stores:
    kind: str
    prefix: str
    dedup: DedupStore
    caps: CapStore
    limiter: RateLimiter


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    if request.param == "memory":
        dedup = MemoryDedupStore()
        yield Stores("memory", prefix, dedup, MemoryCapStore(dedup), MemoryRateLimiter())
        return
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield Stores(
            "redis",
            prefix,
            RedisDedupStore(client),
            RedisCapStore(client),
            RedisRateLimiter(client),
        )
    finally:
        await client.aclose()
