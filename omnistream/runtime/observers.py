"""Worker-side collectors: what Faust knows about Kafka, turned into catalog metrics.

- ``KafkaSensor`` (a Faust sensor, called by Faust for every record in and out): records consumed
  and produced per topic, produce errors, DLQ records by reason (read from the dead letter's
  headers, counted when the broker acknowledged them), rebalances.
- ``refresh`` (on a 5 s timer and on every ``/metrics`` scrape): consumer lag per assigned
  topic/partition (the consumer's highwater minus the offset this worker committed), assigned
  partitions per topic and kind, pending timers. Lag is read from Faust's and aiokafka's
  in-memory state, so a scrape costs no broker round trip.
- ``ping_redis``: a PING with a timeout, recorded as round-trip latency, errors and ``redis_up``;
  run periodically and by ``/ready``.

Changelog partitions get no lag: Faust tracks table offsets in its store, not in the consumer
group, so ``highwater - committed`` would report the whole changelog.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter as Tally
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from faust.sensors import Sensor

from omnistream.clock import monotonic, utcnow
from omnistream.observability.metrics import M

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = [
    "REFRESH_INTERVAL_S",
    "KafkaSensor",
    "install",
    "ping_redis",
    "refresh",
    "uptime_seconds",
]

log = logging.getLogger(__name__)

REFRESH_INTERVAL_S = 5.0
REDIS_PING_TIMEOUT_S = 1.0
_REASON_HEADER = "omnistream.reason"


class KafkaSensor(Sensor):  # type: ignore[misc,unused-ignore]  # faust is untyped
    """Counts records per topic; DLQ records by the reason in their headers."""

    def __init__(self, dlq_topic: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dlq_topic = dlq_topic
        self._consumed: dict[str, Any] = {}
        self._produced: dict[str, Any] = {}

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        child = self._consumed.get(tp.topic)
        if child is None:
            child = self._consumed[tp.topic] = M.kafka_consumed.labels(tp.topic)
        child.inc()

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> tuple[str, str | None]:
        reason = _header(message.headers, _REASON_HEADER) if topic == self.dlq_topic else None
        return topic, reason

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        topic, reason = state
        child = self._produced.get(topic)
        if child is None:
            child = self._produced[topic] = M.kafka_produced.labels(topic)
        child.inc()
        if topic == self.dlq_topic:
            M.dlq_records.labels(reason or "unknown").inc()

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        topic, _reason = state
        M.kafka_produce_errors.labels(topic).inc()

    def on_rebalance_start(self, app: Any) -> Any:
        M.rebalances.inc()
        return super().on_rebalance_start(app)


def _header(headers: Any, name: str) -> str | None:
    """One header's value from Faust's headers (a list of pairs, a dict or ``None``)."""
    if not headers:
        return None
    items = headers.items() if isinstance(headers, dict) else headers
    for key, value in items:
        if key == name:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return None


class _AppState:
    """Per app: when it started, and the label sets of the last refresh (to remove stale ones)."""

    def __init__(self) -> None:
        self.started_at: float | None = None
        self.lag: set[tuple[str, str]] = set()
        self.assigned: set[tuple[str, str]] = set()


_STATE: WeakKeyDictionary[Any, _AppState] = WeakKeyDictionary()


def uptime_seconds(runtime: Runtime) -> float | None:
    """Seconds since :func:`install` ran for this runtime's app (``None`` if it did not)."""
    started = _STATE.setdefault(runtime.app, _AppState()).started_at
    return None if started is None else utcnow().timestamp() - started


def _lag(consumer: Any, tp: Any) -> int | None:
    """highwater - committed for one partition, or ``None`` when the consumer cannot tell yet."""
    try:
        highwater = consumer.highwater(tp)
    except Exception:  # partition revoked between listing and reading, consumer not started
        return None
    if highwater is None:
        return None
    committed = consumer._committed_offset.get(tp) or 0  # Faust stores offset 0 as None
    return max(0, int(highwater) - int(committed))


def refresh(runtime: Runtime) -> None:
    """Update the gauges that describe this worker's assignment, lag and timers."""
    app = runtime.app
    reported = _STATE.setdefault(app, _AppState())
    M.timers_pending.set(len(runtime.timers))
    assignor = app.assignor
    if assignor is None:
        return
    actives = set(assignor.assigned_actives())
    standbys = set(assignor.assigned_standbys())
    counts = Tally((tp.topic, "active") for tp in actives)
    counts.update((tp.topic, "standby") for tp in standbys)
    for labels, count in counts.items():
        M.assigned_partitions.labels(*labels).set(count)
    for labels in reported.assigned - set(counts):
        M.assigned_partitions.remove(*labels)
    reported.assigned = set(counts)

    consumer = getattr(app, "_consumer", None)  # never create one just to measure it
    lags: dict[tuple[str, str], int] = {}
    if consumer is not None:
        changelogs = set(app.tables.changelog_topics)
        for tp in actives:
            if tp.topic in changelogs:
                continue
            lag = _lag(consumer, tp)
            if lag is not None:
                lags[(tp.topic, str(tp.partition))] = lag
    for labels, lag in lags.items():
        M.consumer_lag.labels(*labels).set(lag)
    for labels in reported.lag - set(lags):
        M.consumer_lag.remove(*labels)
    reported.lag = set(lags)


async def ping_redis(runtime: Runtime) -> bool:
    """PING Redis with a timeout; record the round trip (or the error) and ``redis_up``."""
    started = monotonic()
    try:
        async with asyncio.timeout(REDIS_PING_TIMEOUT_S):
            ok = bool(await runtime.redis.ping())
    except Exception as exc:  # connection refused, timeout, auth: all mean "Redis is down"
        log.warning("redis ping failed: %s", type(exc).__name__)
        ok = False
    if ok:
        M.redis_ping_seconds.observe(monotonic() - started)
    else:
        M.redis_ping_errors.inc()
    M.redis_up.set(1 if ok else 0)
    return ok


def install(runtime: Runtime) -> None:
    """Register the sensor and the periodic refresh on the worker's app."""
    app = runtime.app
    started = utcnow().timestamp()
    _STATE.setdefault(app, _AppState()).started_at = started
    M.worker_start_time.set(started)
    app.sensors.add(KafkaSensor(runtime.settings.dlq_topic))

    @app.timer(interval=REFRESH_INTERVAL_S)
    async def _observe() -> None:
        refresh(runtime)
        await ping_redis(runtime)
