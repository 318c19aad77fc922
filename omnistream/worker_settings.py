"""Everything a worker reads from its environment: one tree, read once by ``omnistream worker``.

The worker's own settings (``config.Settings``), the channel agents' (``ChannelSettings``), which
provider serves each channel (``ChannelProviders``), the settings of the providers a channel names
(``OMNISTREAM_<PROVIDER>_*``; a provider no channel uses is not read, so a worker without SMTP
credentials starts as long as no channel uses SMTP), Kafka TLS/SASL (``KafkaSecurity``) and
logging (``LogSettings``). The CLI reads the tree and passes it down: nothing under it constructs a
settings class, so a wrong variable fails at start with one line naming it, never later in an
agent, and a test can hand the worker any tree it likes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic_settings import BaseSettings

from omnistream.channels.settings import ChannelProviders, ChannelSettings
from omnistream.config import Settings
from omnistream.observability.logging import LogSettings
from omnistream.ops.kafka_security import KafkaSecurity
from omnistream.providers.registry import read_provider_settings

__all__ = ["WorkerSettings", "read_worker_settings"]


@dataclass(frozen=True)
class WorkerSettings:
    """The settings tree of one worker (see the module docstring)."""

    core: Settings
    channels: ChannelSettings
    providers: ChannelProviders
    provider_settings: Mapping[str, BaseSettings | None]
    """Provider name -> its own settings (``None`` for one without), for the named providers."""
    kafka: KafkaSecurity
    logs: LogSettings

    def named_providers(self) -> dict[str, str]:
        """Channel -> the provider that serves it, for the channels this worker runs."""
        return _named_providers(self.providers, self.core.channels)


def _named_providers(providers: ChannelProviders, channels: Iterable[str]) -> dict[str, str]:
    named = {channel: providers.for_channel(channel) for channel in channels}
    return {channel: name for channel, name in named.items() if name is not None}


def read_worker_settings(
    core: Settings | None = None, channels: ChannelSettings | None = None
) -> WorkerSettings:
    """Read the tree from the environment (``core`` and ``channels`` when given are used as
    they are). Raises ``ProviderConfigError`` for a named provider's bad or missing setting and
    pydantic's ``ValidationError`` for the others."""
    core = core if core is not None else Settings()
    providers = ChannelProviders()
    names = sorted(set(_named_providers(providers, core.channels).values()))
    return WorkerSettings(
        core=core,
        channels=channels if channels is not None else ChannelSettings(),
        providers=providers,
        provider_settings={name: read_provider_settings(name) for name in names},
        kafka=KafkaSecurity(),
        logs=LogSettings(),
    )
