"""Worker memory with many customers: RSS after recovering 1M customer rows, RocksDB vs memory.

Processing 1M signups through the pipeline would take ~15 minutes here, so the tables are seeded
the way the customer agent itself writes them, straight into their changelog topics, before a
worker starts:

- ``customers``: one row per customer, as the engine writes it after one ``signed_up`` event
  with traits (no journey matches, so no live instance and no timer: a dormant customer). The
  row is built by the real code path once (``step`` + ``claims_for`` + ``to_bytes``) and varied
  per customer (ids, email and its identifier hash); ``seed_row`` equals the real path's bytes
  (tests/unit/test_bench_rss.py);
- ``aliases``: the ``email:<hash> -> customer id`` row the claim of that signup writes.

Each record goes to partition ``murmur2(key) % partitions``: the partition of the input that
would have written it, which is where Faust puts a table row's changelog record. A worker then
starts on an empty data dir and recovers both tables from the changelog (``/ready`` waits for
recovery; the timer index rebuild that follows is awaited in the worker's log). Measured:
start-to-ready seconds, the worker's VmRSS and VmHWM (peak), the data dir size, then VmRSS after
live ``page_viewed`` traffic to random seeded customers has drained. The same is repeated with
the default ``memory://`` store, and once for a worker with empty tables (the baseline).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.bench_pipeline import Fleet, journeys_dir, start_fleet
from benchmarks.common import bootstrap, produce_bulk
from omnistream import devstack
from omnistream.domain.events import parse_event
from omnistream.domain.identity import claims_for, identifier_key
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.journey.model import Catalog
from omnistream.runtime.partitions import partition_of

__all__ = ["customer_id", "real_row", "run", "seed_records", "seed_row"]

PARTITIONS = 4
"""As ``start_fleet`` configures the workers (``OMNISTREAM_PARTITIONS``)."""
T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
WIDTH = 7
"""Digits of the customer number: every row has the same size up to 10M customers."""
TRAITS = {
    "first_name": "Ada", "last_name": "Lovelace", "locale": "de-DE", "timezone": "Europe/Berlin",
}  # fmt: skip
READY_TIMEOUT_S = 1800.0
MIB = 2**20


def customer_id(n: int) -> str:
    return f"c-{n:0{WIDTH}d}"


def _email(n: int) -> str:
    return f"{customer_id(n)}@example.com"


def _email_key(n: int) -> str:
    key = identifier_key("email", _email(n))
    assert key is not None
    return key


def signup_event(n: int) -> bytes:
    return orjson.dumps({
        "event_id": f"su-{n:0{WIDTH}d}", "type": "signed_up", "source": "app",
        "customer_id": customer_id(n), "timestamp": T0.isoformat(),
        "properties": {"traits": {"email": _email(n), **TRAITS}},
    })  # fmt: skip


def real_row(n: int) -> bytes:
    """Customer ``n``'s row as the customer agent writes it after its signup (no journeys)."""
    event = parse_event(signup_event(n))
    state, commands = step(Catalog(), CustomerState(key=customer_id(n)), event, T0)
    state, claims, _ = claims_for(state, event)
    assert not commands and [c.identifier for c in claims] == [_email_key(n)]
    return state.to_bytes()


_TEMPLATE = real_row(0)
_TEMPLATE_HASH = _email_key(0).encode()
assert _TEMPLATE_HASH.count(b"0" * WIDTH) == 0  # the digit substitution must not touch it


def seed_row(n: int) -> bytes:
    """``real_row(n)`` at a fraction of the cost: the template with the ids and hash swapped."""
    digits = f"{n:0{WIDTH}d}".encode()
    return _TEMPLATE.replace(_TEMPLATE_HASH, _email_key(n).encode()).replace(b"0" * WIDTH, digits)


def seed_records(customers: int) -> Iterator[tuple[str, bytes, bytes]]:
    """(table, key, value) of every seeded table row: a customer row and its email alias."""
    for n in range(customers):
        cid = customer_id(n).encode()
        yield "customers", cid, seed_row(n)
        yield "aliases", _email_key(n).encode(), cid


def changelog(app_id: str, table: str) -> str:
    """Faust's changelog topic of a table (``omnistream.ops.topics.changelog_topic``)."""
    return f"{app_id}-{table}-changelog"


async def _create_changelogs(broker: str, app_id: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(broker))
    await admin.start()
    try:
        compact = {"cleanup.policy": "compact"}
        await admin.create_topics([
            NewTopic(changelog(app_id, t), PARTITIONS, 1, topic_configs=compact)
            for t in ("customers", "aliases")
        ])  # fmt: skip
    finally:
        await admin.close()


async def seed(broker: str, app_id: str, customers: int) -> tuple[int, int]:
    """Produce the seeded rows to the changelogs; returns (records, bytes of keys and values)."""
    await _create_changelogs(broker, app_id)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(broker), max_batch_size=512 * 1024)
    await producer.start()
    records = total = 0
    batches: dict[tuple[str, int], Any] = {}
    pending: list[Any] = []

    async def flush(topic: str, partition: int) -> None:
        batch = batches.pop((topic, partition))
        batch.close()
        pending.append(await producer.send_batch(batch, topic, partition=partition))
        if len(pending) >= 64:
            await asyncio.gather(*pending)
            pending.clear()

    try:
        for table, key, value in seed_records(customers):
            topic = changelog(app_id, table)
            slot = (topic, partition_of(key, PARTITIONS))
            batch = batches.get(slot)
            if batch is None:
                batch = batches[slot] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                await flush(*slot)
                batch = batches[slot] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
            records += 1
            total += len(key) + len(value)
            if records % 400_000 == 0:
                print(f"[bench]   seeded {records:,} records", file=sys.stderr, flush=True)
        for slot in list(batches):
            await flush(*slot)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return records, total


def traffic(count: int, customers: int, tag: str) -> Iterator[tuple[bytes, bytes]]:
    """``page_viewed`` events of random seeded customers, keyed by customer id."""
    rng = random.Random(f"rss-{tag}")  # noqa: S311 - reproducible load, not secrets
    for i in range(count):
        cid = customer_id(rng.randrange(customers))
        yield cid.encode(), orjson.dumps({
            "event_id": f"pv-{tag}-{i}", "type": "page_viewed", "source": "app",
            "customer_id": cid, "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
            "properties": {"path": f"/products/{i % 500}"},
        })  # fmt: skip


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, MiB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = int(value.split()[0]) * 1024 / MIB
    return figures


def dir_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / MIB


def _settled_rss(pid: int, seconds: float = 3.0, timeout: float = 120.0) -> float:
    """VmRSS once it has stopped moving (within 1% over ``seconds``)."""
    deadline = time.monotonic() + timeout
    last = proc_status(pid)["VmRSS"]
    while time.monotonic() < deadline:
        time.sleep(seconds)
        now = proc_status(pid)["VmRSS"]
        if abs(now - last) <= 0.01 * last:
            return now
        last = now
    return last


def _wait_log(path: Path, text: str, proc: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode} (log: {path})")
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{text!r} not in {path} after {timeout:.0f}s")


def _drain(fleet: Fleet, base: float, count: int, started: float, stall: float = 60.0) -> float:
    """Wait until the worker has processed ``count`` events more than ``base`` (its count
    before they were produced, at ``started``); returns events/s."""
    last = base
    moved = time.monotonic()
    while time.monotonic() - moved < stall:
        done = fleet.totals()[0]
        if done - base >= count:
            return count / (time.monotonic() - started)
        if done > last:
            last, moved = done, time.monotonic()
        time.sleep(0.2)
    raise RuntimeError(f"worker stalled after {last - base:.0f} of {count} events")


@dataclass
class StoreRun:
    store: str
    start_to_ready_s: float
    rss_after_recovery: float
    peak_rss: float
    rss_after_traffic: float | None
    traffic_per_s: float | None
    data_dir_mib: float


def measure(
    broker: str, redis: str, workdir: Path, app_id: str, store: str, customers: int, events: int
) -> StoreRun:
    """Start one worker on ``store`` (recovering the seeded tables) and measure it."""
    data_dir = workdir / f"{app_id}-{store.split(':')[0]}"
    extra = {
        "OMNISTREAM_STORE": store, "OMNISTREAM_APP_ID": app_id,
        "OMNISTREAM_DATA_DIR": str(data_dir), "OMNISTREAM_LOG_LEVEL": "INFO",
    }  # fmt: skip
    started = time.monotonic()
    # no broadcast journeys: their scan of every row (on the weekday of an open occurrence)
    # would be measured with the dormant customers
    journeys = journeys_dir(workdir, broadcasts=False)
    fleet = start_fleet(
        broker, redis, workdir, 1, journeys, extra_env=extra, ready_timeout=READY_TIMEOUT_S
    )
    try:
        ready = time.monotonic() - started
        proc = fleet.procs[0]
        log = workdir / f"{fleet.prefix.rstrip('.')}-w0.log"
        _wait_log(log, "timer index rebuilt", proc, READY_TIMEOUT_S)
        rss = _settled_rss(proc.pid)
        print(
            f"[bench]   {store}: ready after {ready:.1f}s, RSS {rss:,.0f} MiB "
            f"(peak {proc_status(proc.pid)['VmHWM']:,.0f})",
            file=sys.stderr,
            flush=True,
        )
        after_traffic = rate = None
        if events:
            base, produced_at = fleet.totals()[0], time.monotonic()
            records = traffic(events, customers, store.split(":")[0])
            asyncio.run(produce_bulk(broker, f"{fleet.prefix}events.app", records))
            rate = _drain(fleet, base, events, produced_at)
            after_traffic = _settled_rss(proc.pid)
            print(
                f"[bench]   {store}: {events:,} events at {rate:,.0f}/s, RSS {after_traffic:,.0f}"
                " MiB",
                file=sys.stderr,
                flush=True,
            )
        peak = proc_status(proc.pid)["VmHWM"]
    finally:
        fleet.stop()
    return StoreRun(store, ready, rss, peak, after_traffic, rate, dir_mib(data_dir))


def _broker_rss(broker: str) -> float | None:
    """RSS of the embedded broker (found by its listener URL), MiB; ``None`` if not found."""
    listener = f"tcp://{bootstrap(broker)}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if listener in (entry / "cmdline").read_bytes():
                return proc_status(int(entry.name))["VmRSS"]
        except OSError:
            continue
    return None


def run(broker: str, redis: str, workdir: Path, quick: bool = False) -> dict[str, Any]:
    customers = 50_000 if quick else 1_000_000
    events = 5_000 if quick else 20_000
    app_id = f"rss{os.getpid()}"

    empty = measure(broker, redis, workdir, f"{app_id}e", "rocksdb://", 0, 0)
    print(f"[bench]   seeding {customers:,} customers ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    records, seeded = asyncio.run(seed(broker, app_id, customers))
    seed_s = time.monotonic() - started
    broker_rss = _broker_rss(broker)
    print(
        f"[bench]   seeded {records:,} records, {seeded / MIB:,.0f} MiB in {seed_s:.0f}s "
        f"(broker RSS {broker_rss or 0:,.0f} MiB)",
        file=sys.stderr,
        flush=True,
    )
    rocks = measure(broker, redis, workdir, app_id, "rocksdb://", customers, events)
    memory = measure(broker, redis, workdir, app_id, "memory://", customers, events)
    return {
        "customers": customers,
        "row_bytes": len(seed_row(0)),
        "seed_records": records,
        "seed_mib": seeded / MIB,
        "seed_seconds": seed_s,
        "broker_rss_mib_after_seed": broker_rss,
        "empty_worker_rss_mib": empty.rss_after_recovery,
        "recovery_seconds": rocks.start_to_ready_s,
        "rss_mib_after_recovery": rocks.rss_after_recovery,
        "peak_rss_mib": rocks.peak_rss,
        "rss_mib_after_traffic": rocks.rss_after_traffic,
        "traffic_events": events,
        "traffic_per_s": rocks.traffic_per_s,
        "data_dir_mib": rocks.data_dir_mib,
        "memory_recovery_seconds": memory.start_to_ready_s,
        "memory_rss_mib_after_recovery": memory.rss_after_recovery,
        "memory_peak_rss_mib": memory.peak_rss,
        "memory_rss_mib_after_traffic": memory.rss_after_traffic,
        "memory_traffic_per_s": memory.traffic_per_s,
        "empty_worker_start_to_ready_seconds": empty.start_to_ready_s,
    }


if __name__ == "__main__":
    import json
    import tempfile

    with devstack.embedded() as (b, r):
        print(json.dumps(run(b.url, r.url, Path(tempfile.mkdtemp()), quick=True), indent=2))
