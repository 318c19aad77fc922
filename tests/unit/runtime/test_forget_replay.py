"""Erasure survives Redis failing half-way (issue 15 item 8): a replay of the forget request (the
guarded retry, or the redelivery after a crash) finishes the job.

``forget_customer`` deleted the row first and the Redis keys after: Redis failing in between left
the keys, and the replay found no row and returned. Each test runs once against an in-memory
Redis and once against the real redis-server (marked ``integration``), with a wrapper that makes
one DELETE fail as a dropped connection would.
"""

from __future__ import annotations

import asyncio
import fnmatch
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from omnistream.channels.settings import ChannelSettings
from omnistream.domain.state import CustomerState
from omnistream.runtime.dlq import guarded
from omnistream.runtime.identity import forget_customer
from omnistream.runtime.timers import TimerIndex

KEY = b"c-forget"


@dataclass
class MemoryRedis:
    """The two commands erasure uses, over a dict."""

    data: dict[str, bytes] = field(default_factory=dict)

    async def set(self, key: str, value: bytes) -> None:
        self.data[key] = value

    async def exists(self, *keys: str) -> int:
        return sum(key in self.data for key in keys)

    async def scan_iter(self, match: str, count: int = 10) -> AsyncIterator[str]:
        for key in [k for k in self.data if fnmatch.fnmatchcase(k, match)]:
            yield key

    async def delete(self, *keys: str) -> int:
        return sum(self.data.pop(key, None) is not None for key in keys)


class Flaky:
    """Redis whose ``fail_at``-th DELETE fails once, as a connection dropped mid-erasure."""

    def __init__(self, real: Any, fail_at: int) -> None:
        self.real = real
        self.deletes = 0
        self.fail_at = fail_at

    def scan_iter(self, match: str, count: int = 10) -> Any:
        return self.real.scan_iter(match=match, count=count)

    async def delete(self, *keys: Any) -> int:
        self.deletes += 1
        if self.deletes == self.fail_at:
            raise RedisConnectionError("Connection reset by peer")
        return int(await self.real.delete(*keys))


class AckedTopic:
    """Produced records are acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, **record: Any) -> asyncio.Future[None]:
        self.sent.append(record)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def redis(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryRedis()
        return
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    """This test's own channel key prefix (erasure reads it from the channel settings)."""
    value = f"fg{uuid.uuid4().hex[:10]}:"
    monkeypatch.setenv("OMNISTREAM_CHANNELS_REDIS_PREFIX", value)
    return value


async def customer_with_keys(redis: Any, prefix: str) -> tuple[Any, list[str]]:
    keys = [f"{prefix}{kind}:{{{KEY.decode()}}}" for kind in ("dedup", "caps", "lease")]
    keys.append(f"{prefix}caps:{{{KEY.decode()}}}:email:day")
    for name in keys:
        await redis.set(name, b"1")
    runtime = SimpleNamespace(
        customers={KEY: CustomerState(key=KEY.decode()).to_bytes()},
        aliases={},
        timers=TimerIndex(),
        topics=SimpleNamespace(customer_events=AckedTopic(), sends={}),
        redis=Flaky(redis, fail_at=2),
        channels=SimpleNamespace(settings=ChannelSettings()),
    )
    return runtime, keys


async def left(redis: Any, keys: list[str]) -> int:
    return int(await redis.exists(*keys))


async def test_a_replay_after_redis_failed_half_way_finishes_the_erasure(
    redis: Any, prefix: str
) -> None:
    runtime, keys = await customer_with_keys(redis, prefix)
    with pytest.raises(RedisConnectionError):
        await forget_customer(runtime, KEY)
    assert 0 < await left(redis, keys) < len(keys)  # it did fail half-way

    await forget_customer(runtime, KEY)  # the redelivered request
    assert await left(redis, keys) == 0
    assert KEY not in runtime.customers


async def test_guarded_retries_a_half_done_erasure_until_it_is_done(
    redis: Any, prefix: str
) -> None:
    runtime, keys = await customer_with_keys(redis, prefix)
    message = SimpleNamespace(topic="t.customer-events", partition=0, offset=5, key=KEY, value=b"")
    delays: list[float] = []

    async def no_wait(delay: float) -> None:
        delays.append(delay)

    forget: Callable[[Any], Awaitable[None]] = lambda _m: forget_customer(runtime, KEY)  # noqa: E731
    await guarded(runtime, "customer", message, forget, sleep=no_wait)
    assert len(delays) == 1
    assert await left(redis, keys) == 0
    assert KEY not in runtime.customers
