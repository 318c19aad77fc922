"""Frequency caps and the dedup claim in one Lua script: one round trip, atomic.

Why one script: a read-then-increment ("ZCARD, and if below the limit, ZADD") run by two workers
at once lets both see the last free slot and both send. Redis runs a script without
interleaving any other command, so the check and the count of *every* window, and the dedup
claim, happen as one step: of N workers racing for the last slot exactly one gets it (tested in
tests/contract/test_cap_race.py, next to a naive version that lets several through).

Each window is a sorted set of send ids scored by their time in milliseconds (a sliding window:
entries older than the window are trimmed on every check). Members are send ids, so a retried
claim, or the same send counted again after falling back to another channel, never counts twice
in a shared window, and a refund is an exact ``ZREM``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import redis.asyncio as aioredis

from omnistream.ports import CapCounter, Claim
from omnistream.storage.redis_base import roundtrip
from omnistream.storage.redis_dedup import IN_FLIGHT, decode_claim

__all__ = ["CLAIM_WITHIN_CAPS", "RedisCapStore"]

CLAIM_WITHIN_CAPS: Final = """
-- KEYS[1]: dedup key; KEYS[1 + j]: window j (a sorted set of send ids scored by time in ms)
-- ARGV: marker, in-flight ttl ms, now ms, member, then limit_j, window_ms_j for each window
local current = redis.call('GET', KEYS[1])
if current then
  return {0, current}
end
local now = tonumber(ARGV[3])
local member = ARGV[4]
local windows = #KEYS - 1
for j = 1, windows do
  local key = KEYS[1 + j]
  local limit = tonumber(ARGV[3 + 2 * j])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - tonumber(ARGV[4 + 2 * j]))
  if not redis.call('ZSCORE', key, member) and redis.call('ZCARD', key) >= limit then
    return {1, tostring(j)}
  end
end
for j = 1, windows do
  local key = KEYS[1 + j]
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, ARGV[4 + 2 * j])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {2, ''}
"""


class RedisCapStore:
    """``CapStore`` on Redis. ``claim_within_caps`` and ``refund`` are one round trip each."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(CLAIM_WITHIN_CAPS)

    async def claim_within_caps(
        self,
        key: str,
        token: str,
        ttl_ms: int,
        member: str,
        counters: Sequence[CapCounter],
        now_ms: int,
    ) -> Claim:
        args: list[str | bytes | int] = [IN_FLIGHT + token.encode(), ttl_ms, now_ms, member]
        for counter in counters:
            args += [counter.limit, counter.window_ms]
        keys = [key, *(counter.key for counter in counters)]
        code, value = await roundtrip("caps_claim", self._script(keys=keys, args=args))
        if code == 0:
            return decode_claim(bytes(value))
        if code == 1:
            return Claim("capped", counter=int(value) - 1)
        return Claim("claimed")

    async def refund(self, member: str, counters: Sequence[CapCounter]) -> None:
        if not counters:
            return
        pipe = self._redis.pipeline(transaction=False)
        for counter in counters:
            pipe.zrem(counter.key, member)
        await roundtrip("caps_refund", pipe.execute())
