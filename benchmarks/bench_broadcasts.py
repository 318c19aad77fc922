"""Scheduled broadcasts: how fast a worker judges rows, and how long one worker takes to enter
N customers into a broadcast, with its memory while it does.

- ``rows_judged_per_s`` (in process, median of 5 runs over 20k rows): ``runtime.broadcasts.judge``
  on real customer rows (a signed-up customer, as ``bench_rss`` seeds them), with the audience
  ``friday_regulars`` (order-history functions) and with a trait condition.
- End to end (one run): N customers are seeded into the ``customers`` changelog the way the
  customer agent writes them (``bench_rss.seed``), one worker recovers them, and a broadcast
  due now (``on`` today, ``at`` two minutes ago in the customers' zone, Europe/Berlin) enters
  all of them: the scan produces one ``broadcast_due`` per customer, the customer agent enters
  the journey (one ``update_profile`` step, so no channel traffic is measured here). Figures:
  seconds from the first row judged to the last partition done (scan) and to the last entry,
  rows judged per second in the worker, VmRSS when the scan starts, the largest VmRSS sampled
  (every 0.5 s) while it scans and enters, and VmHWM (the peak of the whole run, recovery
  included).

N is 100k (10k with ``--quick``): 1M customers take ~200 s to recover alone on this machine
(docs/performance.md) and the entries run at the customer agent's rate, so 1M does not fit in
a few minutes here. ``BENCH_BROADCAST_CUSTOMERS`` sets N for a longer run;
``BENCH_BROADCAST_JOURNEY_EVENTS=false`` runs the worker without the journey-events stream.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaProducer

from benchmarks.bench_pipeline import Fleet, start_fleet
from benchmarks.bench_rss import (
    PARTITIONS,
    _settled_rss,
    changelog,
    customer_id,
    proc_status,
    seed,
    seed_row,
)
from benchmarks.common import bootstrap, median
from omnistream import devstack
from omnistream.journey.loader import load_catalog
from omnistream.journey.model import Catalog
from omnistream.runtime.broadcasts import judge
from omnistream.runtime.partitions import partition_of

__all__ = ["run"]

ZONE = ZoneInfo("Europe/Berlin")  # the seeded customers' zone (bench_rss.TRAITS)
REPO = Path(__file__).resolve().parents[1]
JOURNEY = """
id: bench_broadcast
name: Bench broadcast
trigger:
  schedule: {{on: "{day}", at: "{at}", late: 6h}}
  audience: {audience}
steps:
  - id: mark
    type: update_profile
    set: {{last_broadcast: "{day}"}}
"""
SEGMENTS = """
segments:
  friday_regulars:
    when: >-
      orders_count(weekday="fri", days=180) >= 3
      and orders_count(weekday="fri", days=180) * 2 >= orders_count(days=180)
  german:
    when: profile.traits.locale == "de-DE"
"""
POLL_S = 0.5
TAIL: Final = 40
"""Customers produced one record per batch after the bulk seed (see ``seed_tail``)."""


def _journeys(target: Path, audience: str, now: datetime) -> Path:
    """A broadcast due two minutes ago in Berlin, to ``audience``."""
    target.mkdir(parents=True, exist_ok=True)
    local = (now - timedelta(minutes=2)).astimezone(ZONE)
    text = JOURNEY.format(day=local.date().isoformat(), at=f"{local:%H:%M}", audience=audience)
    (target / "bench_broadcast.yaml").write_text(textwrap.dedent(text))
    (target / "segments.yaml").write_text(textwrap.dedent(SEGMENTS))
    return target


async def seed_tail(broker: str, app_id: str, first: int, count: int) -> None:
    """Customer rows ``first .. first + count - 1``, one record batch each.

    Tansu reports a partition's end as the base offset of its last record batch + 1, so a
    worker recovering a bulk-seeded changelog stops before the rest of each partition's last
    batch (measured: 8,384 of 10,000 rows recovered, 2,096 per partition). Ending every
    partition with single-record batches makes the reported end the real one.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(broker))
    await producer.start()
    try:
        for n in range(first, first + count):
            key = customer_id(n).encode()
            partition = partition_of(key, PARTITIONS)
            topic = changelog(app_id, "customers")
            await producer.send_and_wait(topic, seed_row(n), key=key, partition=partition)
    finally:
        await producer.stop()


def judge_rate(audience: str, rows: int = 20_000, repeats: int = 5) -> float:
    """Rows judged per second by ``judge`` (median of ``repeats``)."""
    now = datetime.now(UTC)
    catalog: Catalog = load_catalog(_journeys(Path(tempfile.mkdtemp()), audience, now))
    journey = catalog.journeys["bench_broadcast"]
    schedule = journey.trigger.schedule
    assert schedule is not None and schedule.on is not None
    day = schedule.on[0]
    raws = [seed_row(n) for n in range(rows)]
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        verdicts = [judge(catalog, journey, day, raw, now) for raw in raws]
        rates.append(rows / (time.perf_counter() - started))
        assert len(verdicts) == rows
    return median(rates)


def _figures(fleet: Fleet) -> dict[str, float]:
    text = fleet.metrics(fleet.urls[0])
    wanted = {
        "omnistream_broadcast_rows_total{": "rows",
        "omnistream_broadcast_partitions_done_total{": "done",
        "omnistream_journey_entries_total{": "entries",
    }
    found = dict.fromkeys([*wanted.values(), "turns"], 0.0)
    for line in text.splitlines():
        for prefix, name in wanted.items():
            if line.startswith(prefix):
                found[name] += float(line.rsplit(" ", 1)[1])
                if 'result="turn"' in line:
                    found["turns"] += float(line.rsplit(" ", 1)[1])
    found["rss"] = proc_status(fleet.procs[0].pid)["VmRSS"]
    return found


def _wait(
    fleet: Fleet, done: Any, timeout: float, what: str, rss: list[float]
) -> tuple[float, dict[str, float]]:
    """Poll until ``done(figures)``; every VmRSS sample goes into ``rss``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        figures = _figures(fleet)
        rss.append(figures["rss"])
        if done(figures):
            return time.monotonic(), figures
        if fleet.procs[0].poll() is not None:
            raise RuntimeError(f"worker exited while waiting for {what}")
        time.sleep(POLL_S)
    raise RuntimeError(f"timed out waiting for {what}: {_figures(fleet)}")


def enter_all(broker: str, redis: str, workdir: Path, customers: int) -> dict[str, float]:
    """Seed ``customers``, start one worker, and time the broadcast that enters them all."""
    app_id = f"bc{os.getpid()}"
    print(f"[bench]   seeding {customers:,} customers ...", file=sys.stderr, flush=True)
    asyncio.run(seed(broker, app_id, customers - TAIL))
    asyncio.run(seed_tail(broker, app_id, customers - TAIL, TAIL))
    journeys = _journeys(workdir / f"{app_id}-journeys", "german", datetime.now(UTC))
    extra = {
        "OMNISTREAM_APP_ID": app_id, "OMNISTREAM_STORE": "rocksdb://",
        "OMNISTREAM_DATA_DIR": str(workdir / f"{app_id}-data"),
        "OMNISTREAM_BROADCAST_TICK_S": "1", "OMNISTREAM_LOG_LEVEL": "INFO",
        "OMNISTREAM_JOURNEY_EVENTS": os.environ.get("BENCH_BROADCAST_JOURNEY_EVENTS", "true"),
    }  # fmt: skip
    started = time.monotonic()
    fleet = start_fleet(broker, redis, workdir, 1, journeys, extra, ready_timeout=1800)
    try:
        ready = time.monotonic() - started
        pid = fleet.procs[0].pid
        samples: list[float] = []
        first, before = _wait(fleet, lambda f: f["rows"] > 0, 120, "the scan to start", samples)
        samples.clear()
        scanned, _ = _wait(fleet, lambda f: f["done"] >= 4, 3600, "the scan", samples)
        entered, figures = _wait(
            fleet, lambda f: f["entries"] >= customers, 3600, f"{customers:,} entries", samples
        )
        peak = proc_status(pid)["VmHWM"]
        rss_after = _settled_rss(pid)
    finally:
        fleet.stop()
    return {
        "customers": customers,
        "recovery_seconds": ready,
        "scan_seconds": scanned - first,
        "rows_judged_per_s_in_worker": figures["rows"] / max(scanned - first, 1e-9),
        "enter_all_seconds": entered - first,
        "entries_per_s": customers / max(entered - first, 1e-9),
        "turns_produced": figures["turns"],
        "rss_mib_at_scan_start": before["rss"],
        "max_rss_mib_during_scan_and_entries": max(samples),
        "peak_rss_mib_whole_run": peak,
        "rss_mib_after": rss_after,
    }


def run(broker: str, redis: str, workdir: Path, quick: bool = False) -> dict[str, Any]:
    customers = int(os.environ.get("BENCH_BROADCAST_CUSTOMERS", 10_000 if quick else 100_000))
    result: dict[str, Any] = {
        "rows_judged_per_s_friday_regulars": judge_rate("friday_regulars"),
        "rows_judged_per_s_trait_audience": judge_rate("german"),
    }
    result.update(enter_all(broker, redis, workdir, customers))
    return result


if __name__ == "__main__":
    import json

    with devstack.embedded() as (b, r):
        print(json.dumps(run(b.url, r.url, Path(tempfile.mkdtemp()), quick=True), indent=2))
