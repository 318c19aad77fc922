"""One worker's view of omnistream: the ``Runtime`` every agent module is installed onto.

Kept apart from ``runtime/app.py`` (which builds it from settings and the Faust app) so the agent
modules can import the type without importing the builder, which imports all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from omnistream.config import Settings
from omnistream.journey.model import Catalog
from omnistream.runtime.partitions import OwnedPartitions
from omnistream.runtime.timer_index import TimerIndex
from omnistream.runtime.wiring import ChannelAdapters

__all__ = ["Runtime", "Topics"]


@dataclass
class Topics:
    """Every topic the worker reads or writes (values and keys are raw bytes)."""

    customer_events: Any
    customer_inputs: Any
    """What the customer agent reads: ``customer_events`` and the source topics (ingest)."""
    dlq: Any
    sends: dict[str, Any] = field(default_factory=dict)
    journey_events: Any = None
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
    redis: aioredis.Redis
    """Connects on its first command; made with the runtime, so it exists before any agent runs
    (see ``build_runtime``)."""
    owned: OwnedPartitions
    """The customer-events partitions this worker owns now (updated on every rebalance)."""
    channels: ChannelAdapters
    """Providers, Redis stores, dispatcher and receipt handler (``runtime/wiring.py``)."""
    timers: TimerIndex = field(default_factory=TimerIndex)
    journey_stats: Any = None
    """Faust global table of journey stats buckets (``runtime/journey_events.py``)."""
