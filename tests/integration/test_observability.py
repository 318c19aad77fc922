"""The SRE view of one running worker: /metrics passes promtool, every dashboard and alert query
names a metric the worker declares, /health and /ready answer, and the logs are redacted JSON.

One worker start serves all checks (a start costs seconds); traffic is driven first so the
labelled series the dashboard's core panels rely on carry samples, not only HELP/TYPE lines.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from omnistream.observability import dashboard
from omnistream.observability.promql import metric_names
from tests.observability.promtool import promtool_path, run

from .conftest import Stack, Worker, wait_until
from .test_metrics_exact import produce_records
from .test_walking_skeleton import JOURNEY

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "grace@example.com"
PHONE = "+44 20 7946 0958"
TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x08")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}
CORE = {
    "omnistream_events_ingested_total",
    "omnistream_events_rejected_total",
    "omnistream_dlq_records_total",
    "omnistream_stage_seconds_bucket",
    "omnistream_journey_entries_total",
    "omnistream_sends_total",
    "omnistream_consumer_lag_records",
    "omnistream_assigned_partitions",
    "omnistream_kafka_consumed_records_total",
    "omnistream_redis_up",
    "omnistream_redis_ping_seconds_bucket",
    "omnistream_worker_start_time_seconds",
    "omnistream_worker_info",
    "omnistream_timers_pending",
}
"""Series the traffic below must have produced samples for."""


def declared(text: str) -> set[str]:
    """Sample names the worker declares (HELP/TYPE), expanded by type; labelled or not."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
    return names


def with_samples(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def traffic() -> list[tuple[str, bytes]]:
    def ev(event_id: str, type_: str, **props: object) -> bytes:
        return orjson.dumps(
            {"event_id": event_id, "type": type_, "source": "site", "customer_id": "c-9",
             "timestamp": "2026-11-24T10:00:00Z", "properties": props}
        )  # fmt: skip

    return [
        ("site", ev("o1", "signed_up", traits={"email": EMAIL, "phone": PHONE})),
        ("site", ev("o2", "order_placed", order_id="o-9", total=5)),
        ("site", b'{"contact": "' + EMAIL.encode() + b'"'),  # invalid JSON, contact inside
    ]


@pytest.fixture(scope="module")
def promtool() -> str:
    return promtool_path()


def test_worker_observability(
    stack: Stack, start_worker: Callable[..., Worker], promtool: str
) -> None:
    (stack.journeys_dir / "order_confirmation.yaml").write_text(JOURNEY)
    worker = start_worker(OMNISTREAM_LOG_FORMAT="json", OMNISTREAM_LOG_LEVEL="INFO")
    asyncio.run(produce_records(stack, traffic()))
    wait_until(
        lambda: CORE <= with_samples(worker.metrics()),
        60,
        lambda: f"samples of {sorted(CORE - with_samples(worker.metrics()))}\n{worker.log_tail()}",
    )
    text = worker.metrics()

    checked = run(promtool, "check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    names = declared(text)
    for title, expr in dashboard.expressions():
        missing = metric_names(expr) - names
        assert not missing, f"dashboard panel {title!r} queries {missing} the worker lacks"
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        missing = metric_names(rule["expr"]) - names - {"up"}  # `up` is Prometheus' own
        assert not missing, f"alert {rule['alert']} queries {missing} the worker lacks"

    status, body = worker.fetch("/health")
    health = json.loads(body)
    assert status == 200 and health["live"] is True and health["uptime_seconds"] > 0
    status, body = worker.fetch("/ready")
    ready = json.loads(body)
    assert status == 200, ready
    assert ready["ready"] and ready["redis"] and ready["recovery_done"]
    assert ready["assigned_partitions"] > 0

    # mode's worker writes terminal control codes (show cursor, backspace) to stdout, which
    # shares the log file here; they are not log records.
    log_text = TERMINAL_CODES.sub("", worker.log_path.read_text(errors="replace"))
    records = [json.loads(line) for line in log_text.splitlines() if line.strip()]
    assert records, "the worker logged nothing"
    assert all({"message", "level", "logger", "timestamp"} <= r.keys() for r in records)
    rejected = [r for r in records if "rejected record" in r["message"]]
    assert [r["level"] for r in rejected] == ["warning"]
    assert EMAIL not in log_text and PHONE not in log_text
