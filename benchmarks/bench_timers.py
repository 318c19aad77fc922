"""Timer firing lag: 10k durable waits due in the same second, on one worker.

Each of N customers enters a journey that waits ``until`` the same local minute (UTC profiles),
so every timer is due at the same instant. We report the worker's own firing lag (due -> fired,
``omnistream_timer_lag_seconds``: mean and the share within 1 s / 5 s) and how long after the
due instant the last customer left the journey (``omnistream_journey_exits_total``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.bench_pipeline import start_fleet
from benchmarks.common import produce_bulk
from omnistream.clock import utcnow

__all__ = ["run"]

JOURNEY = """
id: bench_wait
name: Bench wait
trigger: {{event: bench_wait}}
entry: {{reentry: always, max_instances: 2}}
steps:
  - id: hold
    type: wait
    until: "{until}"
    next: done
  - id: done
    type: exit
"""


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _total(text: str, name: str, **labels: str) -> float:
    return sum(
        v for k, v in _samples(text, name).items() if all((a, b) in k for a, b in labels.items())
    )


def run(broker: str, redis: str, workdir: Path, quick: bool = False) -> dict[str, Any]:
    count = 2_000 if quick else 10_000
    # due at the start of a minute far enough away for ingest to finish first
    due = (utcnow() + timedelta(seconds=count / 400 + 40)).replace(second=0, microsecond=0)
    due += timedelta(minutes=1)
    journeys = workdir / "timer-journeys"
    journeys.mkdir(exist_ok=True)
    (journeys / "bench_wait.yaml").write_text(JOURNEY.format(until=due.strftime("%H:%M")))
    fleet = start_fleet(broker, redis, workdir, 1, journeys=journeys)
    try:
        now = datetime.now(UTC).isoformat()

        def envelope(n: int) -> bytes:
            return orjson.dumps({
                "event_id": f"w-{n}", "type": "bench_wait", "source": "app",
                "customer_id": f"t-{n}", "timestamp": now, "properties": {},
            })  # fmt: skip

        records = ((f"t-{n}".encode(), envelope(n)) for n in range(count))
        asyncio.run(produce_bulk(broker, f"{fleet.prefix}events.app", records))
        url = fleet.urls[0]
        deadline = time.monotonic() + 600
        pending = 0.0
        while time.monotonic() < deadline:
            pending = _total(fleet.metrics(url), "omnistream_timers_pending")
            if pending >= count:
                break
            time.sleep(0.5)
        print(f"[bench]   {int(pending)} timers pending, due {due:%H:%M:%S}", file=sys.stderr)
        if pending < count:
            raise RuntimeError(f"only {pending} of {count} timers pending before the due time")
        while utcnow() < due:
            time.sleep(0.2)
        last_exit = due
        while time.monotonic() < deadline:
            text = fleet.metrics(url)
            if _total(text, "omnistream_journey_exits_total", journey="bench_wait") >= count:
                last_exit = utcnow()
                break
            time.sleep(0.1)
        text = fleet.metrics(url)
        lag_sum = _total(text, "omnistream_timer_lag_seconds_sum")
        lag_count = _total(text, "omnistream_timer_lag_seconds_count")
        within = {
            le: _total(text, "omnistream_timer_lag_seconds_bucket", le=le) for le in ("1.0", "5.0")
        }
        return {
            "timers_due_same_second": float(count),
            "timer_fire_lag_mean_s": lag_sum / lag_count if lag_count else float("nan"),
            "timer_fire_within_1s_share": within["1.0"] / lag_count if lag_count else 0.0,
            "timer_fire_within_5s_share": within["5.0"] / lag_count if lag_count else 0.0,
            "timer_all_exited_after_due_s": (last_exit - due).total_seconds(),
        }
    finally:
        fleet.stop()
