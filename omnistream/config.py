"""Settings, from ``OMNISTREAM_*`` environment variables (or a ``.env`` file).

Production points at real Kafka and Redis by URL; ``omnistream dev`` and the tests fill in the
embedded servers' URLs themselves.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from omnistream.domain.vocabulary import CHANNELS, SOURCES

__all__ = ["CHANNELS", "SOURCE_TOPICS", "Settings"]

SOURCE_TOPICS = SOURCES
"""Backend sources; each gets an ``omni.events.<source>`` input topic."""


class Settings(BaseSettings):
    """Everything a worker needs to know about its surroundings."""

    model_config = SettingsConfigDict(env_prefix="OMNISTREAM_", env_file=".env", extra="ignore")

    app_id: str = Field(default="omnistream", description="Faust app id = consumer group id.")
    broker: str = Field(
        default="kafka://127.0.0.1:9092", description="Kafka bootstrap servers, `kafka://host:port`"
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0")
    redis_socket_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="Longest wait for one Redis reply: a hung Redis raises a timeout (retried "
        "with backoff) instead of blocking an agent silently. No command omnistream sends "
        "blocks on the server.",
    )
    redis_connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Longest wait to open a Redis connection."
    )
    redis_health_check_interval_s: int = Field(
        default=30,
        ge=0,
        description="A connection idle this long is PINGed before use, so one Redis (or a "
        "proxy) dropped is found before a command is lost on it; 0 turns it off.",
    )
    topic_prefix: str = Field(default="omni.", description="Prefix of every omnistream topic.")
    partitions: int = Field(default=4, ge=1, le=10_000)
    replication_factor: int = Field(default=1, ge=1)
    journeys_dir: Path = Field(default=Path("journeys"))
    channels: Annotated[tuple[str, ...], NoDecode] = CHANNELS
    web_host: str = Field(
        default="127.0.0.1",
        description="Bind address of the internal listener (Faust's web server: /metrics, "
        "/ready, /customers; bearer token required). Workers reach each other here.",
    )
    web_port: int = Field(default=6066, ge=0, le=65535)
    public_host: str = Field(
        default="127.0.0.1",
        description="Bind address of the public listener (/webhooks/{provider}, /health, "
        "/ready without details): what providers and probes reach. 0.0.0.0 in deploy/.",
    )
    public_port: int = Field(default=6067, ge=0, le=65535)
    internal_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated bearer tokens accepted on the internal listener (several "
        "for rotation; random, e.g. secrets.token_urlsafe(32)). None: every internal route "
        "answers 401.",
    )
    metrics_open: bool = Field(
        default=False,
        description="Serve /metrics on the internal listener without a token (for a "
        "Prometheus that cannot send one). Every other internal route still needs a token.",
    )
    advertised_url: str | None = Field(
        default=None,
        description="URL other workers use to reach this one's web server (table routing of "
        "/customers); default http://<web_host or hostname>:<web_port>.",
    )
    standby_replicas: int = Field(
        default=1, ge=0, description="Faust table standby replicas kept by other workers."
    )
    store: str = Field(
        default="memory://", description="Faust table store: memory:// or rocksdb://"
    )
    data_dir: Path = Field(default=Path("var/worker"), description="Per-worker local state.")
    public_base_url: str | None = Field(
        default=None,
        description="The workers' public base URL as providers call it (webhook signatures).",
    )
    event_loop: Literal["asyncio", "uvloop"] = Field(
        default="uvloop", description="uvloop measured about 20% faster for the worker."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    provider_log_path: str = Field(
        default="-", description="Where the `log` provider writes JSON lines; `-` is stdout."
    )
    rebalance_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Faust broker_rebalance_timeout; Tansu holds a join for half of it.",
    )
    fetch_max_wait_ms: int = Field(
        default=100,
        ge=1,
        le=5000,
        description="Longest a consumer fetch may wait for records (Faust's own is 1500 ms; "
        "Kafka answers as soon as records arrive, but Tansu holds a fetch for the whole wait, "
        "so the embedded dev/test stack uses 10).",
    )
    session_timeout_s: float = Field(default=30.0, gt=0)
    customer_batch_max_records: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="The customer agent writes changed rows and acks its inputs once per batch "
        "of at most this many inputs (1 = after every input).",
    )
    customer_batch_max_ms: float = Field(
        default=10.0,
        gt=0,
        le=10_000,
        description="... or once the batch's first input is this old: the most a row write and "
        "an offset commit wait; outputs are produced at once.",
    )
    max_future_skew_s: float = Field(
        default=900.0,
        ge=0,
        description="Source events dated further ahead of the worker's clock than this go to "
        "the DLQ (reason future_timestamp): one event dated 9999 would freeze last_seen.",
    )
    gc_gen0_threshold: int = Field(
        default=700,
        ge=0,
        description="Allocations between two young-generation collections of Python's cyclic "
        "garbage collector in the worker (700: Python's own; the older generations keep "
        "Python's ratios). 10,000 (older ones every 20) took less worker CPU per event in each "
        "of 6 measured pairs (1-32%, noisy); 10,000 with Python's ratios made a worker "
        "recovering 1M customers on RocksDB hold 357 MiB instead of 309 (docs/performance.md): "
        "a trade for workers with memory to spare. 0 turns the collector off (not advised).",
    )
    declare_topics: bool = Field(
        default=True,
        description="Workers create the topics they use at start (Faust's topic_allow_declare). "
        "Off where the workers' Kafka principal may not create topics: run `omnistream topics "
        "create` first. Also off for brokers without CreateTopics (librdkafka's mock cluster, "
        "which creates topics on first use).",
    )
    recovery_consistency_check: bool = Field(
        default=True,
        description="Faust's check that a changelog partition was not read past its end; a "
        "failed check crashes the worker. Tansu reports a partition's end as the base offset "
        "of its last record batch + 1, so a standby that read a whole batch trips it: the "
        "embedded dev/test stack turns it off.",
    )

    broadcast_tick_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often a worker looks for open broadcast occurrences to scan "
        "(runtime/broadcasts.py).",
    )
    broadcast_lead_s: float = Field(
        default=3600.0,
        ge=0,
        le=86_400,
        description="Start scanning this long before an occurrence opens (the first zone "
        "reaching its local time), so early zones are armed in time.",
    )
    broadcast_chunk_rows: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Rows judged between two progress writes (and event-loop yields) of a "
        "broadcast scan; a worker taking a partition over repeats at most this many.",
    )
    broadcast_chunk_pause_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="Pause after each chunk of a broadcast scan, to spread its load (tests "
        "use it to hold a scan open across a rebalance).",
    )

    journey_events: bool = Field(
        default=True,
        description="Produce omni.journey-events (entries, steps, sends, outcomes, goals, exits; "
        "docs/journey-events.md) and keep the journey stats from it; false turns both off.",
    )

    @field_validator("channels", mode="before")
    @classmethod
    def _split_channels(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(CHANNELS))
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}; known: {', '.join(CHANNELS)}")
        return value

    @field_validator("internal_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("advertised_url", mode="after")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def web_url(self) -> str:
        """The advertised URL, or one built from the bind address (hostname for 0.0.0.0)."""
        if self.advertised_url:
            return self.advertised_url
        host = self.web_host if self.web_host not in ("0.0.0.0", "::") else socket.gethostname()  # noqa: S104
        return f"http://{host}:{self.web_port}"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def source_topics(self) -> list[str]:
        return [self.topic(f"events.{source}") for source in SOURCE_TOPICS]

    @property
    def customer_events_topic(self) -> str:
        return self.topic("customer-events")

    @property
    def dlq_topic(self) -> str:
        return self.topic("dlq")

    @property
    def journey_events_topic(self) -> str:
        return self.topic("journey-events")

    def send_topic(self, channel: str) -> str:
        return self.topic(f"send.{channel}")
