"""Baselines on the same broker: a raw aiokafka consume loop, a Faust agent that does nothing,
and the same agent writing one table row per record.

These are the ceilings the pipeline is compared with: the broker/client limit, Faust's own
per-record cost, and Faust's cost for per-record state (one changelog record per event).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from benchmarks.common import bootstrap, create_topic, median, produce_bulk
from omnistream import devstack

__all__ = ["faust_noop_rate", "raw_consume_rate", "run"]

PAYLOAD = b'{"event_id":"e","type":"page_viewed","source":"site","customer_id":"c"}'


async def raw_consume_rate(broker_url: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap(broker_url), auto_offset_reset="earliest",
        group_id=None, fetch_max_bytes=16 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024,
    )  # fmt: skip
    await consumer.start()
    seen = 0
    started = None
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if started is None and batch:
                started = time.perf_counter()
            for records in batch.values():
                seen += len(records)
    finally:
        await consumer.stop()
    assert started is not None
    return count / (time.perf_counter() - started)


def faust_noop_rate(
    broker_url: str, topic: str, count: int, workdir: Path, write_table: bool = False
) -> float:
    """Run benchmarks/faust_noop.py as a worker process; it reports its own rate."""
    result = workdir / f"noop-{topic}.json"
    env = dict(os.environ)
    env.update(
        NOOP_BROKER=broker_url, NOOP_TOPIC=topic, NOOP_COUNT=str(count), NOOP_RESULT=str(result),
        NOOP_WEB_PORT=str(devstack.free_port()), NOOP_DATADIR=str(workdir / f"noop-{topic}"),
        NOOP_TABLE="1" if write_table else "0",
    )  # fmt: skip
    proc, log = devstack.spawn(
        "noop",
        [sys.executable, "-m", "benchmarks.faust_noop"],
        log_path=workdir / "noop.log",
        env=env,
    )
    try:
        deadline = time.monotonic() + 180
        while not result.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"faust no-op worker failed; see {workdir / 'noop.log'}")
            time.sleep(0.2)
        return float(json.loads(result.read_text())["events_per_s"])
    finally:
        server = devstack.EmbeddedServer("noop", proc, "", 0, None, log)
        server.stop()


def run(broker_url: str, workdir: Path, quick: bool = False) -> dict[str, Any]:
    count = 50_000 if quick else 200_000
    noop_count = 20_000 if quick else 60_000
    repeats = 1 if quick else 3
    raw_rates, noop_rates, table_rates = [], [], []
    keyed = [(b"c%d" % (i % 5000), PAYLOAD) for i in range(noop_count)]  # 5k customers
    for i in range(repeats):
        topic = f"bench.raw.{i}"
        asyncio.run(create_topic(broker_url, topic, 4))
        asyncio.run(produce_bulk(broker_url, topic, ((None, PAYLOAD) for _ in range(count))))
        raw_rates.append(asyncio.run(raw_consume_rate(broker_url, topic, count)))
        for write_table, rates in ((False, noop_rates), (True, table_rates)):
            ntopic = f"bench.{'table' if write_table else 'noop'}.{i}"
            asyncio.run(create_topic(broker_url, ntopic, 4))
            asyncio.run(produce_bulk(broker_url, ntopic, keyed))
            rates.append(faust_noop_rate(broker_url, ntopic, noop_count, workdir, write_table))
    return {
        "raw_aiokafka_consume_per_s": median(raw_rates),
        "faust_noop_agent_per_s": median(noop_rates),
        "faust_table_write_agent_per_s": median(table_rates),
        "raw_runs": raw_rates,
        "noop_runs": noop_rates,
        "table_write_runs": table_rates,
    }
