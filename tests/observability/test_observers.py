"""Worker-side collectors against fakes of Faust's app and consumer (no broker needed)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from omnistream.observability.metrics import REGISTRY
from omnistream.runtime import observers, web
from omnistream.runtime.observers import KafkaSensor, ping_redis, refresh
from omnistream.runtime.timers import TimerIndex


class TP(NamedTuple):
    topic: str
    partition: int


@dataclass
class FakeConsumer:
    highwaters: dict[TP, int | None]
    _committed_offset: dict[TP, int | None] = field(default_factory=lambda: defaultdict(None))

    def highwater(self, tp: TP) -> int | None:
        if tp not in self.highwaters:
            raise AssertionError("partition not assigned")  # what aiokafka does
        return self.highwaters[tp]


@dataclass
class FakeAssignor:
    actives: set[TP]
    standbys: set[TP] = field(default_factory=set)

    def assigned_actives(self) -> set[TP]:
        return self.actives

    def assigned_standbys(self) -> set[TP]:
        return self.standbys


@dataclass
class FakeTables:
    changelog_topics: set[str]


class FakeApp:
    def __init__(self, assignor: FakeAssignor, consumer: FakeConsumer | None) -> None:
        self.assignor = assignor
        self._consumer = consumer
        self.tables = FakeTables({"app-customers-changelog"})
        self.should_stop = False


@dataclass
class FakeRuntime:
    app: Any
    timers: TimerIndex = field(default_factory=TimerIndex)
    redis: Any = None


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_lag_is_highwater_minus_committed_and_skips_changelogs() -> None:
    src0, src1 = TP("t.events.site", 0), TP("t.events.site", 1)
    cust, changelog = TP("t.customer-events", 2), TP("app-customers-changelog", 2)
    consumer = FakeConsumer({src0: 120, src1: 7, cust: None, changelog: 500})
    consumer._committed_offset.update({src0: 100, src1: None})  # Faust stores offset 0 as None
    app = FakeApp(
        FakeAssignor({src0, src1, cust, changelog}, {TP("t.customer-events", 3)}), consumer
    )
    runtime = FakeRuntime(app)
    runtime.timers.schedule("c-1", "t-1", datetime(2026, 1, 1, tzinfo=UTC))
    refresh(runtime)  # type: ignore[arg-type]

    assert sample("omnistream_consumer_lag_records", topic="t.events.site", partition="0") == 20
    assert sample("omnistream_consumer_lag_records", topic="t.events.site", partition="1") == 7
    assert (
        sample("omnistream_consumer_lag_records", topic="t.customer-events", partition="2") is None
    )
    assert (
        sample("omnistream_consumer_lag_records", topic="app-customers-changelog", partition="2")
        is None
    )
    assert sample("omnistream_assigned_partitions", topic="t.events.site", kind="active") == 2
    assert sample("omnistream_assigned_partitions", topic="t.customer-events", kind="standby") == 1
    assert sample("omnistream_timers_pending") == 1

    # a rebalance takes partition 1 away: its series disappear instead of freezing
    app.assignor.actives = {src0}
    app.assignor.standbys = set()
    consumer._committed_offset[src0] = 120
    refresh(runtime)  # type: ignore[arg-type]
    assert sample("omnistream_consumer_lag_records", topic="t.events.site", partition="0") == 0
    assert sample("omnistream_consumer_lag_records", topic="t.events.site", partition="1") is None
    assert sample("omnistream_assigned_partitions", topic="t.events.site", kind="active") == 1
    assert (
        sample("omnistream_assigned_partitions", topic="t.customer-events", kind="standby") is None
    )


def test_no_consumer_yet_reports_assignment_only() -> None:
    app = FakeApp(FakeAssignor({TP("t.lonely", 0)}), consumer=None)
    refresh(FakeRuntime(app))  # type: ignore[arg-type]
    assert sample("omnistream_assigned_partitions", topic="t.lonely", kind="active") == 1
    assert sample("omnistream_consumer_lag_records", topic="t.lonely", partition="0") is None


@dataclass
class Pending:
    headers: Any


def test_sensor_counts_dlq_records_by_reason_when_acknowledged() -> None:
    sensor = KafkaSensor("t.dlq")
    before = sample("omnistream_dlq_records_total", reason="too_large") or 0
    produced = sample("omnistream_kafka_produced_records_total", topic="t.dlq") or 0
    state = sensor.on_send_initiated(
        None, "t.dlq", Pending([("omnistream.reason", b"too_large")]), 1, 2
    )
    assert sample("omnistream_dlq_records_total", reason="too_large") in (None, before)
    sensor.on_send_completed(None, state, None)
    assert sample("omnistream_dlq_records_total", reason="too_large") == before + 1
    assert sample("omnistream_kafka_produced_records_total", topic="t.dlq") == produced + 1

    other = sensor.on_send_initiated(
        None, "t.send.email", Pending({"omnistream.reason": b"x"}), 1, 2
    )
    sensor.on_send_completed(None, other, None)
    assert sample("omnistream_dlq_records_total", reason="x") is None

    errors = sample("omnistream_kafka_produce_errors_total", topic="t.dlq") or 0
    failed = sensor.on_send_initiated(None, "t.dlq", Pending(None), 1, 2)
    sensor.on_send_error(None, RuntimeError("broker gone"), failed)
    assert sample("omnistream_kafka_produce_errors_total", topic="t.dlq") == errors + 1


def test_sensor_counts_consumed_records_per_topic() -> None:
    sensor = KafkaSensor("t.dlq")
    before = sample("omnistream_kafka_consumed_records_total", topic="t.in") or 0
    for offset in range(3):
        sensor.on_message_in(TP("t.in", 0), offset, None)
    assert sample("omnistream_kafka_consumed_records_total", topic="t.in") == before + 3


class FakeRedis:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    async def ping(self) -> bool:
        if self.fail:
            raise ConnectionError("refused")
        return True


def test_ping_redis_records_up_latency_and_errors() -> None:
    runtime = FakeRuntime(FakeApp(FakeAssignor(set()), None), redis=FakeRedis(fail=False))
    count = sample("omnistream_redis_ping_seconds_count") or 0
    errors = sample("omnistream_redis_ping_errors_total") or 0
    assert asyncio.run(ping_redis(runtime)) is True  # type: ignore[arg-type]
    assert sample("omnistream_redis_up") == 1
    assert sample("omnistream_redis_ping_seconds_count") == count + 1
    runtime.redis.fail = True
    assert asyncio.run(ping_redis(runtime)) is False  # type: ignore[arg-type]
    assert sample("omnistream_redis_up") == 0
    assert sample("omnistream_redis_ping_errors_total") == errors + 1


def test_health_is_liveness_only() -> None:
    app = FakeApp(FakeAssignor(set()), None)
    runtime = FakeRuntime(app)
    report = web.health(runtime)  # type: ignore[arg-type]
    assert report["live"] is True and report["uptime_seconds"] is None  # observers not installed
    app.should_stop = True
    assert web.health(runtime)["live"] is False  # type: ignore[arg-type]
    assert observers.uptime_seconds(runtime) is None  # type: ignore[arg-type]
