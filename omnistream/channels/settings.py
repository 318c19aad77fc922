"""Settings of the channel agents: which provider serves each channel, dedup, retries, limits.

Read from the environment (``OMNISTREAM_PROVIDER_*`` for the channel -> provider map,
``OMNISTREAM_CHANNELS_*`` for the rest); each provider reads its own credentials with its own
prefix (``OMNISTREAM_SMTP_*``, ``OMNISTREAM_TWILIO_*``, ...). The caps policy is a YAML/JSON
file named by ``OMNISTREAM_CHANNELS_CAPS_FILE`` (defaults when unset).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ChannelProviders", "ChannelSettings", "RateLimit"]


class ChannelProviders(BaseSettings):
    """Provider name per channel (``OMNISTREAM_PROVIDER_EMAIL=smtp``). ``log`` in dev."""

    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_PROVIDER_", env_file=".env", extra="ignore"
    )

    email: str = "log"
    sms: str = "log"
    mobile_push: str = "log"
    web_push: str = "log"
    viber: str = "log"
    telegram: str = "log"
    app_inbox: str = "inbox"

    def for_channel(self, channel: str) -> str | None:
        value = getattr(self, channel, None)
        return value if isinstance(value, str) else None


class RateLimit(BaseModel):
    """A token bucket: ``rate`` requests per second on average, bursts of up to ``burst``."""

    rate: float = Field(gt=0)
    burst: int = Field(default=1, ge=1)


class ChannelSettings(BaseSettings):
    """Dedup, retry and rate-limit knobs of the channel agents."""

    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_CHANNELS_", env_file=".env", extra="ignore"
    )

    redis_prefix: str = Field(default="omni:", description="Prefix of every channel Redis key.")
    caps_file: Path | None = Field(default=None, description="Caps policy, YAML or JSON.")
    dedup_ttl_s: int = Field(
        default=7 * 86400, gt=0, description="How long a finished send id is remembered."
    )
    in_flight_ttl_s: int = Field(
        default=120,
        gt=0,
        description="How long a claim lasts while the provider is called; longer than the "
        "worst retry sequence, so a live worker's claim never lapses.",
    )
    owner_lease_s: float = Field(
        default=10.0,
        gt=0,
        description="How long a worker's lease lasts without renewal (renewed every third of "
        "it). A claim whose owner's lease lapsed belongs to a dead worker and is taken over "
        "at once instead of waiting out in_flight_ttl_s.",
    )
    held_claim_wait_s: float = Field(
        default=1.0,
        ge=0,
        description="How long a send waits for a claim another worker holds (it is mid-send, "
        "or dead with its lease not yet lapsed) before it is put back at the end of its "
        "channel's topic, so the sends behind it go on instead of queueing behind the claim.",
    )
    provider_timeout_s: float = Field(default=10.0, gt=0)
    retry_attempts: int = Field(default=4, ge=1, le=20)
    retry_base_s: float = Field(default=0.25, gt=0)
    retry_max_s: float = Field(default=8.0, gt=0)
    retry_after_max_s: float = Field(
        default=30.0, gt=0, description="A longer Retry-After gives up instead of waiting."
    )
    redis_backoff_max_s: float = Field(default=5.0, gt=0)
    redis_max_wait_s: float | None = Field(
        default=None,
        description="Give up (raise) after waiting this long for Redis; unset = wait forever, "
        "which keeps the Kafka offset uncommitted and loses nothing.",
    )
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=dict,
        description='Per provider, JSON: {"twilio": {"rate": 10, "burst": 20}}.',
    )
