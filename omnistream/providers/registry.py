"""Providers by name: ``OMNISTREAM_PROVIDER_<CHANNEL>=<name>`` picks one for a channel.

Each provider module is imported only when named, and reads its own settings
(``OMNISTREAM_<PROVIDER>_*``) when built, so a worker without, say, SMTP credentials starts fine
as long as no channel uses SMTP. Whatever is wrong with a provider's settings (an unknown name,
a value of the wrong type, an empty callback secret) ends here as one ``ProviderConfigError``
line naming the variable, which ``omnistream worker`` prints before exiting 1.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Final

from pydantic import ValidationError

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.ports import Provider
from omnistream.providers.errors import ProviderConfigError

__all__ = ["PROVIDERS", "ProviderConfigError", "build_provider"]

PROVIDERS: Final = {
    "log": "omnistream.providers.log",
    "inbox": "omnistream.providers.inbox",
    "smtp": "omnistream.providers.smtp",
    "webhook": "omnistream.providers.webhook",
    "telegram": "omnistream.providers.telegram",
    "twilio": "omnistream.providers.twilio",
    "viber": "omnistream.providers.viber",
    "fcm": "omnistream.providers.fcm",
    "webpush": "omnistream.providers.webpush",
}
"""Provider name -> module; each module has ``from_settings(settings, channel_settings)``."""


def build_provider(name: str, settings: Settings, channel_settings: ChannelSettings) -> Provider:
    """Build the provider called ``name`` from its environment settings."""
    module_name = PROVIDERS.get(name)
    if module_name is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ProviderConfigError(
            f"unknown provider {name!r} in OMNISTREAM_PROVIDER_<CHANNEL>; known: {known}"
        )
    module = importlib.import_module(module_name)
    try:
        provider: Provider = module.from_settings(settings, channel_settings)
    except ValidationError as exc:
        raise ProviderConfigError(_one_line(name, _env_prefix(module, exc), exc)) from None
    return provider


def _env_prefix(module: ModuleType, exc: ValidationError) -> str:
    """The env prefix of the settings class that failed (``exc.title`` is its name)."""
    model = getattr(module, exc.title, None)
    config = getattr(model, "model_config", {})
    prefix = config.get("env_prefix") if isinstance(config, dict) else None
    return prefix.upper() if isinstance(prefix, str) else ""


def _one_line(name: str, prefix: str, exc: ValidationError) -> str:
    """``provider smtp: OMNISTREAM_SMTP_PORT: Input should be a valid integer; ...``."""
    problems = [
        f"{prefix}{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
        for error in exc.errors()
    ]
    return f"provider {name}: " + "; ".join(problems)
