"""Providers by name: ``OMNISTREAM_PROVIDER_<CHANNEL>=<name>`` picks one for a channel.

Each provider module is imported only when named. Its own settings (``OMNISTREAM_<PROVIDER>_*``,
the module's ``SETTINGS`` class) are read by ``read_provider_settings`` for named providers only,
once, when ``omnistream worker`` reads its settings tree (``omnistream/worker_settings.py``), so a
worker without, say, SMTP credentials starts fine as long as no channel uses SMTP; the wiring
then builds each provider from what was read (``build_provider``). Whatever is wrong with a
provider's settings (an unknown name, a value of the wrong type, an empty callback secret) ends
here as one ``ProviderConfigError`` line naming the variable, which ``omnistream worker`` prints
before exiting 1.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Final

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.ports import Provider
from omnistream.providers.errors import ProviderConfigError

__all__ = ["PROVIDERS", "ProviderConfigError", "build_provider", "read_provider_settings"]

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
"""Provider name -> module; each module has ``SETTINGS`` (its own settings class, or ``None``)
and ``from_settings(own, settings, channel_settings)``."""


def _module(name: str) -> ModuleType:
    module_name = PROVIDERS.get(name)
    if module_name is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ProviderConfigError(
            f"unknown provider {name!r} in OMNISTREAM_PROVIDER_<CHANNEL>; known: {known}"
        )
    return importlib.import_module(module_name)


def read_provider_settings(name: str) -> BaseSettings | None:
    """The settings of the provider called ``name``, read from the environment (``None`` for a
    provider without settings of its own)."""
    module = _module(name)
    settings_class: type[BaseSettings] | None = module.SETTINGS
    if settings_class is None:
        return None
    try:
        return settings_class()
    except ValidationError as exc:
        raise ProviderConfigError(_one_line(name, _env_prefix(module, exc), exc)) from None


def build_provider(
    name: str, own: BaseSettings | None, settings: Settings, channel_settings: ChannelSettings
) -> Provider:
    """Build the provider called ``name`` from its settings ``own`` (``read_provider_settings``)."""
    module = _module(name)
    try:
        provider: Provider = module.from_settings(own, settings, channel_settings)
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
