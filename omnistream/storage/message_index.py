"""``MessageIndex`` stores: Redis (shared by every worker) and memory (tests, dev).

Two plain ``SET ... PX`` keys per accepted message, one round trip (a pipeline without MULTI:
the two entries are independent, and each is "latest wins").
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
import redis.asyncio as aioredis

from omnistream.channels.message_tokens import index_digest
from omnistream.clock import monotonic
from omnistream.ports import SentMessage
from omnistream.redis_keys import message_index, recipient_index
from omnistream.storage.redis_base import roundtrip

__all__ = ["MemoryMessageIndex", "RedisMessageIndex"]


def _encode(sent: SentMessage) -> bytes:
    return orjson.dumps({"s": sent.send_id, "c": sent.customer_key, "ch": sent.channel})


def _decode(raw: bytes | str | None) -> SentMessage | None:
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
        return SentMessage(str(data["s"]), str(data["c"]), str(data["ch"]))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


class RedisMessageIndex:
    def __init__(self, redis: aioredis.Redis, prefix: str = "omni:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def remember(
        self, provider: str, message_id: str, recipient: str, sent: SentMessage, ttl_ms: int
    ) -> None:
        value = _encode(sent)
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._message_key(provider, message_id), value, px=ttl_ms)
        pipe.set(self._recipient_key(provider, recipient), value, px=ttl_ms)
        await roundtrip("message_index_set", pipe.execute())

    async def by_message(self, provider: str, message_id: str) -> SentMessage | None:
        key = self._message_key(provider, message_id)
        raw: bytes | str | None = await roundtrip("message_index_get", self._redis.get(key))
        return _decode(raw)

    async def by_recipient(self, provider: str, recipient: str) -> SentMessage | None:
        key = self._recipient_key(provider, recipient)
        raw: bytes | str | None = await roundtrip("message_index_get", self._redis.get(key))
        return _decode(raw)

    def _message_key(self, provider: str, message_id: str) -> str:
        return message_index(self._prefix, provider, index_digest(message_id))

    def _recipient_key(self, provider: str, recipient: str) -> str:
        return recipient_index(self._prefix, provider, index_digest(recipient))


class MemoryMessageIndex:
    """The same behaviour in dicts, with an injectable monotonic clock for expiry."""

    def __init__(self, clock: Callable[[], float] = monotonic) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, str, str], tuple[SentMessage, float]] = {}

    async def remember(
        self, provider: str, message_id: str, recipient: str, sent: SentMessage, ttl_ms: int
    ) -> None:
        expires = self._clock() + ttl_ms / 1000
        self._entries[("m", provider, message_id)] = (sent, expires)
        self._entries[("r", provider, recipient)] = (sent, expires)

    async def by_message(self, provider: str, message_id: str) -> SentMessage | None:
        return self._get(("m", provider, message_id))

    async def by_recipient(self, provider: str, recipient: str) -> SentMessage | None:
        return self._get(("r", provider, recipient))

    def _get(self, key: tuple[str, str, str]) -> SentMessage | None:
        entry = self._entries.get(key)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]
