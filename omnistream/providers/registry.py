"""Providers by name: ``OMNISTREAM_PROVIDER_<CHANNEL>=<name>`` picks one for a channel.

Each provider module is imported only when named, and reads its own settings
(``OMNISTREAM_<PROVIDER>_*``) when built, so a worker without, say, SMTP credentials starts fine
as long as no channel uses SMTP.
"""

from __future__ import annotations

import importlib
from typing import Final

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.ports import Provider

__all__ = ["PROVIDERS", "build_provider"]

PROVIDERS: Final = {
    "log": "omnistream.providers.log",
    "inbox": "omnistream.providers.inbox",
    "smtp": "omnistream.providers.smtp",
    "webhook": "omnistream.providers.webhook",
    "telegram": "omnistream.providers.telegram",
    "twilio": "omnistream.providers.twilio",
    "viber": "omnistream.providers.viber",
    "fcm": "omnistream.providers.fcm",
}
"""Provider name -> module; each module has ``from_settings(settings, channel_settings)``."""


def build_provider(name: str, settings: Settings, channel_settings: ChannelSettings) -> Provider:
    """Build the provider called ``name`` from its environment settings."""
    module_name = PROVIDERS.get(name)
    if module_name is None:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}")
    module = importlib.import_module(module_name)
    provider: Provider = module.from_settings(settings, channel_settings)
    return provider
