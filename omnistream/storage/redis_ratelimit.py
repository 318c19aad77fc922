"""Provider rate limits: a token bucket in Redis shared by every worker.

The bucket (tokens, last refill time) lives in one hash per provider and is refilled and taken
from in one Lua script, so workers never overdraw it between a read and a write. The caller's
clock is passed in (workers' clocks are NTP-close; a few ms of skew only shifts a refill).
"""

from __future__ import annotations

from typing import Final

import redis.asyncio as aioredis

from omnistream.storage.redis_base import roundtrip

__all__ = ["BUCKET_SCRIPT", "RedisRateLimiter"]

BUCKET_SCRIPT: Final = """
-- KEYS[1]: bucket hash; ARGV: rate per second, burst, now ms. Returns ms to wait (0 = taken).
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  at = now
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""


class RedisRateLimiter:
    """``RateLimiter`` on Redis; one round trip per ``acquire``."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._script = redis.register_script(BUCKET_SCRIPT)

    async def acquire(self, key: str, rate: float, burst: int, now_ms: int) -> float:
        wait_ms = await roundtrip(
            "rate_acquire", self._script(keys=[key], args=[rate, burst, now_ms])
        )
        return int(wait_ms) / 1000.0
