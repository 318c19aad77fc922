"""One worker's view of omnistream: the ``Runtime`` every agent module is installed onto.

Kept apart from ``runtime/app.py`` (which builds it from settings and the Faust app) so the agent
modules can import the type without importing the builder, which imports all of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from omnistream.clock import utcnow
from omnistream.config import Settings
from omnistream.domain.commands import Command
from omnistream.domain.events import Event
from omnistream.domain.state import CustomerState
from omnistream.journey.model import Catalog
from omnistream.ops.kafka_security import KafkaSecurity
from omnistream.runtime.faust_types import Topic
from omnistream.runtime.partitions import OwnedPartitions
from omnistream.runtime.timer_index import TimerIndex
from omnistream.runtime.watermarks import InputWatermarks
from omnistream.runtime.wiring import ChannelAdapters

__all__ = ["KeyStore", "Runtime", "StepObserver", "Topics"]


class KeyStore(Protocol):
    """What the runtime asks of Redis directly (health checks and erasure's key scan); the
    channel logic reaches Redis through its own ports. ``redis.asyncio.Redis`` is one."""

    def ping(self) -> Awaitable[Any]: ...
    def scan_iter(self, match: str, count: int) -> AsyncIterator[Any]: ...
    def delete(self, *names: Any) -> Awaitable[Any]: ...


StepObserver = Callable[[Event, CustomerState, CustomerState, list[Command]], None]
"""Called after each engine step with the input, the row before and after, and the commands
(also for a repeated event id, where the row comes back unchanged). The harness's timeline
(``journeys simulate``) is one; the worker runs none."""


@dataclass
class Topics:
    """Every topic the worker reads or writes (values and keys are raw bytes)."""

    customer_events: Topic
    customer_inputs: Any
    """What the customer agent reads: ``customer_events`` and the source topics (ingest)."""
    dlq: Topic
    sends: dict[str, Topic] = field(default_factory=dict)
    journey_events: Topic | None = None
    """``omni.journey-events``; ``None`` when ``OMNISTREAM_JOURNEY_EVENTS=false``."""


@dataclass
class Runtime:
    """The Faust app, its topics and tables, the Redis client and the loaded journeys."""

    settings: Settings
    catalog: Catalog
    app: Any
    topics: Topics
    customers: Any
    """Faust table: customer key -> CustomerState bytes."""
    aliases: Any
    """Faust table: identifier key -> customer key it was merged into (docs/identity.md)."""
    redis: KeyStore
    """Connects on its first command; made with the runtime, so it exists before any agent runs
    (see ``build_runtime``)."""
    owned: OwnedPartitions
    """The customer-events partitions this worker owns now (updated on every rebalance)."""
    channels: ChannelAdapters
    """Providers, Redis stores, dispatcher and receipt handler (``runtime/wiring.py``)."""
    timers: TimerIndex = field(default_factory=TimerIndex)
    clock: Callable[[], datetime] = utcnow
    """``now`` for the engine, ingest's clock-skew check and the channel agents; the harness
    passes its manual clock."""
    step_observers: list[StepObserver] = field(default_factory=list)
    watermarks: InputWatermarks | None = None
    """How far each partition's source inputs were read: the timer loop's gate
    (``runtime/watermarks.py``; ``runtime/timers.py`` makes it). None: timers fire when due."""
    kafka: KafkaSecurity = field(default_factory=KafkaSecurity.model_construct)
    """Kafka TLS/SASL for the worker's own extra clients (the console's bounded reads); the
    settings tree's (defaults without it: no TLS, no SASL, never the environment)."""
    journey_stats: Any = None
    """Faust global table of journey stats buckets (``runtime/journey_events.py``)."""
