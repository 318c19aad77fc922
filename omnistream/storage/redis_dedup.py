"""Dedup of send commands in Redis: ``SET NX PX`` for the claim, a plain ``SET`` once done.

A key holds ``b"~" + token`` while a worker is calling the provider (the in-flight marker, with a
short expiry so a dead worker's claim lapses) and ``b"=" + record`` once the send is finished
(with the long dedup expiry), where ``record`` is what a redelivered command should answer.
"""

from __future__ import annotations

from typing import Final

import redis.asyncio as aioredis

from omnistream.ports import Claim
from omnistream.storage.redis_base import roundtrip

__all__ = ["DONE", "IN_FLIGHT", "RedisDedupStore", "decode_claim"]

IN_FLIGHT: Final = b"~"
DONE: Final = b"="

_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_TAKE_OVER: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


def decode_claim(value: bytes | None) -> Claim:
    """Turn a stored dedup value into the ``Claim`` a second claimer sees."""
    if value is None:
        return Claim("claimed")
    if value.startswith(DONE):
        return Claim("done", record=value[len(DONE) :])
    return Claim("in_flight", record=value[len(IN_FLIGHT) :])


class RedisDedupStore:
    """``DedupStore`` on Redis; every method is one round trip."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._release = redis.register_script(_RELEASE)
        self._take_over = redis.register_script(_TAKE_OVER)

    async def claim(self, key: str, token: str, ttl_ms: int) -> Claim:
        marker = IN_FLIGHT + token.encode()
        # SET NX GET (Redis >= 7) would do this in one command; 6.2 needs a pipeline.
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(key, marker, nx=True, px=ttl_ms)
        pipe.get(key)
        was_set, value = await roundtrip("dedup_claim", pipe.execute())
        if was_set:
            return Claim("claimed")
        return decode_claim(value)

    async def complete(self, key: str, record: bytes, ttl_ms: int) -> None:
        await roundtrip("dedup_complete", self._redis.set(key, DONE + record, px=ttl_ms))

    async def release(self, key: str, token: str) -> None:
        await roundtrip(
            "dedup_release", self._release(keys=[key], args=[IN_FLIGHT + token.encode()])
        )

    async def take_over(self, key: str, held: bytes, token: str, ttl_ms: int) -> bool:
        args: list[bytes | int] = [IN_FLIGHT + held, IN_FLIGHT + token.encode(), ttl_ms]
        return bool(await roundtrip("dedup_take_over", self._take_over(keys=[key], args=args)))

    async def lease(self, key: str, ttl_ms: int) -> None:
        await roundtrip("owner_lease", self._redis.set(key, b"1", px=ttl_ms))

    async def leased(self, key: str) -> bool:
        return bool(await roundtrip("owner_leased", self._redis.exists(key)))
