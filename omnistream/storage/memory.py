"""In-memory stores with the same behaviour as the Redis ones (tests, single-process dev runs).

Every method finishes without awaiting anything, so under asyncio each one is atomic exactly
like the Redis scripts it mirrors. Expiry uses an injectable monotonic clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from omnistream.clock import monotonic
from omnistream.ports import CapCounter, Claim
from omnistream.storage.redis_dedup import DONE, IN_FLIGHT, decode_claim

__all__ = ["MemoryCapStore", "MemoryDedupStore", "MemoryRateLimiter"]


@dataclass
class _Entry:
    value: bytes
    expires: float


class MemoryDedupStore:
    """``DedupStore`` in a dict. Share one instance between a ``MemoryCapStore`` and callers."""

    def __init__(self, clock: Callable[[], float] = monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            del self._entries[key]
            return None
        return entry.value

    def put(self, key: str, value: bytes, ttl_ms: int) -> None:
        self._entries[key] = _Entry(value, self._clock() + ttl_ms / 1000)

    async def claim(self, key: str, token: str, ttl_ms: int) -> Claim:
        current = self.get(key)
        if current is not None:
            return decode_claim(current)
        self.put(key, IN_FLIGHT + token.encode(), ttl_ms)
        return Claim("claimed")

    async def complete(self, key: str, record: bytes, ttl_ms: int) -> None:
        self.put(key, DONE + record, ttl_ms)

    async def release(self, key: str, token: str) -> None:
        if self.get(key) == IN_FLIGHT + token.encode():
            del self._entries[key]

    async def take_over(self, key: str, held: bytes, token: str, ttl_ms: int) -> bool:
        if self.get(key) != IN_FLIGHT + held:
            return False
        self.put(key, IN_FLIGHT + token.encode(), ttl_ms)
        return True

    async def lease(self, key: str, ttl_ms: int) -> None:
        self.put(key, b"1", ttl_ms)

    async def leased(self, key: str) -> bool:
        return self.get(key) is not None


class MemoryCapStore:
    """``CapStore`` over a ``MemoryDedupStore``: windows are dicts of member -> time in ms."""

    def __init__(self, dedup: MemoryDedupStore) -> None:
        self._dedup = dedup
        self._windows: dict[str, dict[str, int]] = {}

    async def claim_within_caps(
        self,
        key: str,
        token: str,
        ttl_ms: int,
        member: str,
        counters: Sequence[CapCounter],
        now_ms: int,
    ) -> Claim:
        current = self._dedup.get(key)
        if current is not None:
            return decode_claim(current)
        for index, counter in enumerate(counters):
            window = self._windows.setdefault(counter.key, {})
            horizon = now_ms - counter.window_ms
            for old in [m for m, at in window.items() if at <= horizon]:
                del window[old]
            if member not in window and len(window) >= counter.limit:
                return Claim("capped", counter=index)
        for counter in counters:
            self._windows[counter.key][member] = now_ms
        self._dedup.put(key, IN_FLIGHT + token.encode(), ttl_ms)
        return Claim("claimed")

    async def refund(self, member: str, counters: Sequence[CapCounter]) -> None:
        for counter in counters:
            self._windows.get(counter.key, {}).pop(member, None)


class MemoryRateLimiter:
    """``RateLimiter`` as a dict of token buckets."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, int]] = {}

    async def acquire(self, key: str, rate: float, burst: int, now_ms: int) -> float:
        tokens, at = self._buckets.get(key, (float(burst), now_ms))
        if now_ms > at:
            tokens = min(float(burst), tokens + (now_ms - at) * rate / 1000)
            at = now_ms
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = math.ceil((1 - tokens) * 1000 / rate) / 1000
        self._buckets[key] = (tokens, at)
        return wait
