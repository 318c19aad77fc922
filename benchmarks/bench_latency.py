"""Event -> provider latency at half the sustained rate, on three brokers, 1 and 2 workers.

Demo traffic is produced live at ``rate`` (half of what the pipeline section sustained in the
same run, or ``DEFAULT_RATE`` alone) for 500 customers, so that a 30 s run makes several
hundred sends (with 5,000 customers it made 44: too few for a p99). The latency of each send is
read from the provider's output (``sent_at - caused_at``, ``latency_at``).

Brokers, because the figure depends on the broker more than on the worker:

- ``fresh``: a Tansu started for the run (every stored batch of a partition is listed on each
  fetch and never deleted, so a Tansu slows as it fills);
- ``grown``: the bench's shared Tansu after the earlier sections wrote into it (1 worker);
- ``mock``: librdkafka's mock cluster (``benchmarks/mock_cluster.py``), an in-memory broker
  that answers fetches as soon as records arrive.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks import mock_cluster
from benchmarks.bench_pipeline import start_fleet
from benchmarks.common import median
from omnistream import devstack

__all__ = ["DEFAULT_RATE", "latency_at", "run"]

DEFAULT_RATE = 360.0
"""Events/s when the pipeline section did not run: about half of what one worker sustained on
this machine (2026-12-04)."""
CUSTOMERS = 500


def latency_at(
    broker: str,
    redis: str,
    workdir: Path,
    rate: float,
    seconds: float,
    *,
    workers: int = 1,
    customers: int = 5000,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Event -> provider latency of the sends made while demo traffic runs at ``rate``: from
    the causing event's timestamp (stamped by the producer) to the provider's call."""
    fleet = start_fleet(broker, redis, workdir, workers, extra_env=extra_env)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMNISTREAM_")}
        env.update(OMNISTREAM_BROKER=broker, OMNISTREAM_TOPIC_PREFIX=fleet.prefix)
        limit = int(rate * seconds)
        subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "omnistream", "demo-traffic", "--rate", str(rate),
             "--limit", str(limit), "--customers", str(customers), "--seed", "13"],
            env=env, check=True, capture_output=True, timeout=seconds * 3 + 60,
        )  # fmt: skip
        time.sleep(3.0)  # let the tail drain
        sizes = fleet.batch_sizes()
        latencies = []
        lines = fleet.sends_path.read_bytes().splitlines() if fleet.sends_path.exists() else []
        for line in lines:
            record = orjson.loads(line)
            if "sent_at" in record and "caused_at" in record:
                sent = _timestamp(record["sent_at"]) - _timestamp(record["caused_at"])
                latencies.append(sent)
        latencies.sort()
        if not latencies:
            return {"latency_samples": 0.0, "batch_sizes": sizes}

        def pick(q: float) -> float:
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

        return {
            "latency_samples": float(len(latencies)),
            "latency_p50_ms": pick(0.50) * 1000,
            "latency_p95_ms": pick(0.95) * 1000,
            "latency_p99_ms": pick(0.99) * 1000,
            "batch_sizes": sizes,
        }
    finally:
        fleet.stop()


def _timestamp(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _fresh_tansu(workdir: Path) -> tuple[devstack.EmbeddedServer, dict[str, str]]:
    return devstack.start_broker(workdir), {}


def _mock(workdir: Path) -> tuple[devstack.EmbeddedServer, dict[str, str]]:
    return mock_cluster.start(workdir), dict(mock_cluster.WORKER_ENV)


FRESH_BROKERS: dict[str, Callable[[Path], tuple[devstack.EmbeddedServer, dict[str, str]]]] = {
    "fresh": _fresh_tansu,
    "mock": _mock,
}


def _one_run(
    name: str, broker: str, redis: str, workdir: Path, workers: int, rate: float, seconds: float,
    extra_env: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    result = latency_at(
        broker, redis, workdir, rate, seconds,
        workers=workers, customers=CUSTOMERS, extra_env=extra_env,
    )  # fmt: skip
    print(
        f"[bench]   {name}, {workers} worker(s): {result['latency_samples']:.0f} sends, "
        f"p50 {result.get('latency_p50_ms', 0):.0f} ms, "
        f"p99 {result.get('latency_p99_ms', 0):.0f} ms",
        file=sys.stderr,
    )
    return result


def run(
    broker: str, redis: str, workdir: Path, quick: bool = False, rate: float | None = None
) -> dict[str, Any]:
    """``broker``: the bench's shared (grown) Tansu; ``rate``: the live traffic's events/s."""
    rate = rate or DEFAULT_RATE
    seconds = 10 if quick else 30
    repeats = 1 if quick else 3
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repeats):  # interleaved, so a slow stretch of the machine hits every case
        for name, start in FRESH_BROKERS.items():
            for workers in (1, 2):
                server, extra_env = start(workdir)
                try:
                    result = _one_run(
                        name, server.url, redis, workdir, workers, rate, seconds, extra_env
                    )
                finally:
                    server.stop()
                runs.setdefault(f"{name}_{workers}w", []).append(result)
        result = _one_run("grown", broker, redis, workdir, 1, rate, seconds, {})
        runs.setdefault("grown_1w", []).append(result)
    results: dict[str, Any] = {"latency_rate_per_s": rate, "latency_customers": CUSTOMERS}
    for case, case_runs in runs.items():
        for figure in ("samples", "p50_ms", "p95_ms", "p99_ms"):
            values = [r.get(f"latency_{figure}", 0.0) for r in case_runs]
            results[f"{case}_{figure}"] = median(values)
    results["latency_runs"] = runs
    return results
