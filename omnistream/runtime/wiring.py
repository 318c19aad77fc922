"""The one place that names concrete adapters: Redis stores and providers.

The channel logic (``channels/``) speaks only to ports (``ports.py``); this module builds what
runs behind them from the settings, once per worker: one provider instance per provider name,
shared by the channel agents and the webhook receipts (one connection pool each, not two), and
closes them all on shutdown. The import-linter contract "channels-through-ports" keeps it so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from omnistream.channels.dispatcher import Dispatcher
from omnistream.channels.message_tokens import IndexingProvider
from omnistream.channels.owners import worker_owner_id
from omnistream.channels.receipts import ReceiptHandler
from omnistream.channels.settings import ChannelSettings
from omnistream.policies.caps import load_caps_policy
from omnistream.ports import Provider
from omnistream.providers.registry import build_provider
from omnistream.storage.message_index import RedisMessageIndex
from omnistream.storage.redis_caps import RedisCapStore
from omnistream.storage.redis_dedup import RedisDedupStore
from omnistream.storage.redis_ratelimit import RedisRateLimiter
from omnistream.worker_settings import WorkerSettings

__all__ = ["ChannelAdapters", "build_channel_adapters"]

log = logging.getLogger(__name__)


@dataclass
class ChannelAdapters:
    """What the channel agents and the webhook receipts run on, built once per worker."""

    settings: ChannelSettings
    providers: dict[str, Provider]
    """Provider name -> its one instance."""
    channels: dict[str, str]
    """Channel -> the provider name that serves it (configured channels only)."""
    dispatcher: Dispatcher
    receipts: ReceiptHandler
    _closed: bool = field(default=False, repr=False)

    async def aclose(self) -> None:
        """Close every provider once (idempotent: shutdown may ask twice)."""
        if self._closed:
            return
        self._closed = True
        for name, provider in self.providers.items():
            try:
                await provider.aclose()
            except Exception:  # one provider's close must not keep the others open
                log.exception("closing provider %s failed", name)


def build_channel_adapters(settings: WorkerSettings, redis: aioredis.Redis) -> ChannelAdapters:
    """Providers for the worker's channels, built from the settings tree (a bad provider fails
    here, at start), the Redis stores, the dispatcher and the receipt handler."""
    channel_settings = settings.channels
    channels = settings.named_providers()
    providers: dict[str, Provider] = {}
    for name in channels.values():
        if name not in providers:
            own = settings.provider_settings.get(name)
            providers[name] = build_provider(name, own, settings.core, channel_settings)
    index = RedisMessageIndex(redis, channel_settings.redis_prefix)
    providers = {name: _indexed(provider, index) for name, provider in providers.items()}
    dedup = RedisDedupStore(redis)
    dispatcher = Dispatcher(
        providers={channel: providers[name] for channel, name in channels.items()},
        dedup=dedup,
        caps_store=RedisCapStore(redis),
        caps=load_caps_policy(channel_settings.caps_file),
        rate_limiter=RedisRateLimiter(redis),
        settings=channel_settings,
        owner=worker_owner_id(),
    )
    served: dict[str, list[str]] = {}
    for channel, name in channels.items():
        served.setdefault(name, []).append(channel)
    receipts = ReceiptHandler(
        providers, dedup, prefix=channel_settings.redis_prefix, channels=served, index=index
    )
    return ChannelAdapters(channel_settings, providers, channels, dispatcher, receipts)


def _indexed(provider: Provider, index: RedisMessageIndex) -> Provider:
    """``provider``, wrapped so its message ids are indexed when its callbacks need that
    (Viber's name only the message token; ``channels/message_tokens.py``)."""
    if getattr(provider, "receipts_by_message_id", False):
        return IndexingProvider(provider, index)
    return provider
