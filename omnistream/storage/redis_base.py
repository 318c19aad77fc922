"""What every Redis-backed channel store shares: timing and error counting per round trip.

Each store method is exactly one round trip, so the histogram's count is the number of round
trips (the benchmark reads it to report round trips per send).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from omnistream.clock import monotonic
from omnistream.observability.metrics import M
from omnistream.ports import StoreUnavailable

__all__ = ["REDIS_DOWN", "roundtrip"]

T = TypeVar("T")

REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
"""Errors that mean "Redis is unreachable right now" (wait and retry), not "the request is bad"."""


async def roundtrip(op: str, call: Awaitable[T]) -> T:
    """Await one Redis call, recording its latency and counting connection-level failures,
    which it raises as the port's ``StoreUnavailable`` (the channel logic knows no redis)."""
    started = monotonic()
    try:
        return await call
    except REDIS_DOWN as exc:
        M.channel_redis_errors.labels(op).inc()
        raise StoreUnavailable(f"redis {op}: {type(exc).__name__}: {exc}") from exc
    finally:
        M.channel_redis_seconds.labels(op).observe(monotonic() - started)
