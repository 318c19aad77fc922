"""Build the Faust app from settings and wire the agents onto it.

A ``Runtime`` (defined in ``runtime/runtime.py``) is one worker's view of omnistream: the Faust
app, its topics and tables, the Redis client and the loaded journeys. Each concept lives in its
own module (customers with ingest, senders, timers, web) and registers its agents through
``install(runtime)``.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import faust
import redis.asyncio as aioredis

from omnistream.config import Settings
from omnistream.console import routes as console_routes
from omnistream.journey.model import Catalog
from omnistream.ops.kafka_security import KafkaSecurity
from omnistream.runtime import (
    broadcasts,
    customer_api,
    customers,
    dlq,
    listeners,
    observers,
    reload,
    segments_api,
    senders,
    timers,
    transport,
    undecodable,
    web,
)
from omnistream.runtime.fast_topic import FastTopic
from omnistream.runtime.journey_events import install as install_journey_events
from omnistream.runtime.journey_events import stats_table
from omnistream.runtime.partitions import OwnedPartitions
from omnistream.runtime.runtime import Runtime, Topics
from omnistream.runtime.wiring import build_channel_adapters
from omnistream.worker_settings import WorkerSettings

__all__ = ["build_runtime"]

log = logging.getLogger(__name__)


ROCKSDB_OPTIONS: Final = {
    "write_buffer_size": 4 * 2**20,
    "max_write_buffer_number": 2,
    "block_cache_size": 16 * 2**20,
}
"""Per database (one per table partition). Faust's defaults (64 MiB write buffers, up to 3, and a
2 GiB block cache, each per database) held a worker at 1.27 GiB after recovering 1M customers,
more than the memory store; with these and a streamed timer rebuild: 258 MiB
(``python -m benchmarks --only rss``, docs/performance.md). The memory store ignores them."""


def _faust_app(settings: Settings, security: KafkaSecurity) -> Any:
    """The Faust app; Kafka TLS/SASL as read from ``OMNISTREAM_KAFKA_*`` (``KafkaSecurity``)."""
    session = settings.session_timeout_s
    transport.register()
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        broker_consumer=transport.driver_url(settings.broker),
        broker_producer=transport.driver_url(settings.broker),
        store=settings.store,
        datadir=str(settings.data_dir),
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=session,
        broker_heartbeat_interval=min(3.0, session / 3),
        web_enabled=True,  # the internal listener (runtime/listeners.py)
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        canonical_url=settings.web_url(),
        # Faust's own views read tables and map keys to workers for anyone who asks: off.
        # Table routing (/customers) needs none of them: the assignor knows the owner.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        table_standby_replicas=settings.standby_replicas,
        recovery_consistency_check=settings.recovery_consistency_check,
        topic_allow_declare=settings.declare_topics,
        Topic=FastTopic,  # every topic, changelogs included (runtime/fast_topic.py)
        **security.faust_kwargs(),
    )
    app.omnistream_fetch_max_wait_ms = settings.fetch_max_wait_ms  # type: ignore[attr-defined]
    return app


def _raw_topic(app: Any, *names: str, internal: bool = False) -> Any:
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=internal,
    )


def build_runtime(tree: WorkerSettings, catalog: Catalog) -> Runtime:
    """Create the app, topics and tables, and install every agent and web route.

    ``tree``: every setting of the worker, read once by the CLI and passed down
    (``omnistream/worker_settings.py``)."""
    settings = tree.core
    app = _faust_app(settings, tree.kafka)
    topics = Topics(
        customer_events=_raw_topic(app, settings.customer_events_topic, internal=True),
        # Internal: Faust creates the customer topic, and any source topic that is missing
        # (with the same partition count, so they are assigned together); existing topics are
        # left as they are.
        customer_inputs=_raw_topic(
            app, settings.customer_events_topic, *settings.source_topics, internal=True
        ),
        dlq=_raw_topic(app, settings.dlq_topic, internal=True),
        sends={
            ch: _raw_topic(app, settings.send_topic(ch), internal=True) for ch in settings.channels
        },
        journey_events=(
            _raw_topic(app, settings.journey_events_topic, internal=True)
            if settings.journey_events
            else None
        ),
    )
    customers_table, aliases_table = (
        app.Table(
            name,
            default=None,
            key_type=bytes,
            value_type=bytes,
            partitions=settings.partitions,
            options=ROCKSDB_OPTIONS,
        )
        for name in ("customers", "aliases")
    )
    # The client connects lazily, on its first command. It must exist before any agent runs: a
    # Faust ``@app.task`` starts only after the first table recovery, when agents already
    # consume, and a send command arriving in between crashed the channel agent (and Faust acked
    # the record: a lost send, seen in the churn test).
    # Timeouts: a hung Redis raises (an outage, retried in place by ``guarded``) instead of
    # blocking an agent silently; idle connections are checked before use.
    redis = aioredis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_connect_timeout_s,
        health_check_interval=settings.redis_health_check_interval_s,
    )
    owned = OwnedPartitions(settings.customer_events_topic, settings.partitions).install(app)
    # A bad provider fails here, at start.
    channels = build_channel_adapters(tree, redis)
    runtime = Runtime(
        settings,
        catalog,
        app,
        topics,
        customers_table,
        aliases_table,
        redis=redis,
        owned=owned,
        channels=channels,
        kafka=tree.kafka,
    )
    if settings.journey_events:
        runtime.journey_stats = stats_table(app, settings, ROCKSDB_OPTIONS)

    dlq.install(runtime)  # created at the first assignment, before the worker is ready
    undecodable.install(runtime)  # skipped batches are dead-lettered on the app's loop
    customers.install(runtime)
    install_journey_events(runtime)
    senders.install(runtime)
    timers.install(runtime)
    broadcasts.install(runtime, ROCKSDB_OPTIONS)  # scheduled broadcasts (journey schedules)
    reload.install(runtime)
    listeners.install(runtime)  # token check on the internal routes, public /webhooks
    customer_api.install(runtime)
    segments_api.install(runtime)  # GET /segments/{name}/count (omnistream segments count)
    console_routes.install(runtime)  # /console on the internal listener (docs/console.md)
    web.install(runtime)
    observers.install(runtime)
    return runtime
