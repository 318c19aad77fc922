"""The whole pipeline on the embedded broker and Redis, with worker processes as in production.

Sustained rate: the source topics are pre-filled with demo traffic (a separate producer, as a
backend would: keyed by customer as the README asks, and once more without keys, so every event
is forwarded), then workers drain them: ingest -> customer agent (profile + 20 journeys) ->
send commands -> channel agents (dedup, caps) -> `log` provider. The rate is counted from the
workers' own /metrics. Latency at half that rate: ``bench_latency.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import median, produce_bulk
from omnistream import devstack
from omnistream.clock import utcnow
from omnistream.dev import fetch, wait_ready
from omnistream.sources.demo import demo_events, source_key

__all__ = ["run"]

REPO = Path(__file__).resolve().parents[1]
FILLER = """
id: filler_{n}
name: Filler {n}
trigger: {{event: rare_event_{n}}}
steps:
  - id: send
    type: send
    channels: [email]
    content:
      email: {{subject: "x", body: "filler {n}"}}
"""


@dataclass
class Fleet:
    procs: list[subprocess.Popen[bytes]]
    urls: list[str]
    """Each worker's internal listener (bearer token ``token``)."""
    sends_path: Path
    prefix: str
    token: str

    def metrics(self, url: str) -> str:
        """The /metrics text of the worker at ``url`` (an entry of ``urls``)."""
        return fetch(f"{url}/metrics", token=self.token)[1]

    def stop(self) -> None:
        for proc in self.procs:
            devstack.EmbeddedServer("worker", proc, "", 0).stop()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the worker processes used so far, from ``/proc``: less
        moved by the machine's scheduling than the wall-clock rate (same-commit runs spread
        by a third in rate on this machine)."""
        total = 0.0
        for proc in self.procs:
            with open(f"/proc/{proc.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def batches(self) -> tuple[float, float]:
        """(customer-agent batches, inputs in them) over all workers."""
        count = inputs = 0.0
        for url in self.urls:
            for line in self.metrics(url).splitlines():
                if line.startswith("omnistream_customer_batch_records_count"):
                    count += float(line.rsplit(" ", 1)[1])
                elif line.startswith("omnistream_customer_batch_records_sum"):
                    inputs += float(line.rsplit(" ", 1)[1])
        return count, inputs

    def batch_sizes(self) -> dict[str, float]:
        """Share of the customer-agent batches with at most N inputs, from the workers'
        histogram buckets (cumulative: ``{"<=1": 0.2, "<=2": 0.35, ...}``)."""
        counts: dict[str, float] = {}
        for url in self.urls:
            for line in self.metrics(url).splitlines():
                if line.startswith("omnistream_customer_batch_records_bucket{"):
                    bound = line.split('le="', 1)[1].split('"', 1)[0]
                    counts[bound] = counts.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
        total = counts.get("+Inf", 0.0)
        return {
            f"<={float(bound):g}": count / total
            for bound, count in counts.items()
            if bound != "+Inf" and total
        }

    def totals(self) -> tuple[float, float, float]:
        """(customer inputs of kind event, send commands, send outcomes) over all workers; the
        outcomes count once the customer agent has taken them in as well."""
        inputs = commands = outcomes = taken = 0.0
        for url in self.urls:
            text = self.metrics(url)
            for line in text.splitlines():
                if line.startswith('omnistream_customer_inputs_total{kind="event"}'):
                    inputs += float(line.rsplit(" ", 1)[1])
                elif line.startswith("omnistream_send_commands_total{"):
                    commands += float(line.rsplit(" ", 1)[1])
                elif line.startswith("omnistream_sends_total{"):
                    outcomes += float(line.rsplit(" ", 1)[1])
                elif line.startswith('omnistream_customer_inputs_total{kind="outcome"}'):
                    taken += float(line.rsplit(" ", 1)[1])
        return inputs, commands, min(outcomes, taken)


CONFIRMATION = """
id: bench_order_confirmation
name: Order confirmation (immediate, transactional)
trigger: {event: order_placed}
entry: {reentry: always, max_instances: 100}
steps:
  - id: confirm
    type: send
    channels: [email, sms]
    category: transactional
    content:
      email: {subject: "Order {{ event.properties.order_id }}", body: "Thanks!"}
      sms: {body: "Order {{ event.properties.order_id }} confirmed"}
"""


def journeys_dir(workdir: Path, total: int = 20, broadcasts: bool = True) -> Path:
    """The sample journeys, an immediate order confirmation (the demo traffic orders, and the
    samples start with long waits, so without it nothing is sent within a benchmark), and filler
    journeys on rare events to reach ``total`` active journeys. ``broadcasts=False`` leaves out
    the scheduled samples: a figure that must not depend on the weekday (a broadcast's scan of
    every row runs while its occurrence is open)."""
    target = workdir / ("journeys" if broadcasts else "journeys-no-broadcasts")
    target.mkdir(parents=True, exist_ok=True)
    samples = sorted((REPO / "journeys").glob("*.yaml"))
    if not broadcasts:
        samples = [path for path in samples if not _scheduled(path)]
    (target / "bench_order_confirmation.yaml").write_text(CONFIRMATION)
    count = 1
    for path in samples:
        (target / path.name).write_text(path.read_text())
        count += path.name != "policies.yaml"
    for n in range(max(0, total - count)):
        (target / f"filler_{n}.yaml").write_text(FILLER.format(n=n))
    return target


def _scheduled(path: Path) -> bool:
    """Whether the journey file at ``path`` is a broadcast (``trigger.schedule``)."""
    document = yaml.safe_load(path.read_text())
    trigger = document.get("trigger") if isinstance(document, dict) else None
    return isinstance(trigger, dict) and "schedule" in trigger


_run_ids = itertools.count()


def start_fleet(
    broker: str,
    redis: str,
    workdir: Path,
    workers: int,
    journeys: Path | None = None,
    extra_env: dict[str, str] | None = None,
    ready_timeout: float = 120.0,
) -> Fleet:
    """Start ``workers`` worker processes and wait until each is ready; ``extra_env`` is
    applied last (it may override the defaults below)."""
    run = f"b{os.getpid()}x{next(_run_ids)}"
    sends = workdir / f"{run}-sends.jsonl"
    journeys = journeys if journeys is not None else journeys_dir(workdir)
    procs, urls, token = [], [], secrets.token_urlsafe(32)
    for n in range(workers):
        port = devstack.free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMNISTREAM_")}
        env.update(
            OMNISTREAM_BROKER=broker, OMNISTREAM_REDIS_URL=redis, OMNISTREAM_TOPIC_PREFIX=f"{run}.",
            OMNISTREAM_APP_ID=run, OMNISTREAM_JOURNEYS_DIR=str(journeys),
            OMNISTREAM_PROVIDER_LOG_PATH=str(sends), OMNISTREAM_WEB_PORT=str(port),
            OMNISTREAM_DATA_DIR=str(workdir / f"{run}-w{n}"), OMNISTREAM_LOG_LEVEL="WARNING",
            OMNISTREAM_REBALANCE_TIMEOUT_S="3", OMNISTREAM_SESSION_TIMEOUT_S="6",
            OMNISTREAM_FETCH_MAX_WAIT_MS="10", OMNISTREAM_RECOVERY_CONSISTENCY_CHECK="false",
            OMNISTREAM_PARTITIONS="4", OMNISTREAM_INTERNAL_TOKENS=token,
            OMNISTREAM_PUBLIC_PORT=str(devstack.free_port()),
            # each run its own caps and dedup keys: a rerun of the same traffic must send again
            OMNISTREAM_CHANNELS_REDIS_PREFIX=f"{run}:",
        )  # fmt: skip
        env.update(extra_env or {})
        proc, _log = devstack.spawn(
            f"w{n}", [sys.executable, "-m", "omnistream", "worker"],
            log_path=workdir / f"{run}-w{n}.log", env=env,
        )  # fmt: skip
        procs.append(proc)
        urls.append(f"http://127.0.0.1:{port}")
    fleet = Fleet(procs, urls, sends, f"{run}.", token)
    try:
        for proc, url in zip(procs, urls, strict=True):
            wait_ready(url, proc, timeout=ready_timeout, token=token)
        time.sleep(1.0 if workers > 1 else 0.0)  # let the group settle after the last join
    except BaseException:
        fleet.stop()
        raise
    return fleet


def demo_records(count: int, customers: int) -> Iterator[tuple[str, bytes]]:
    return itertools.islice(demo_events(customers, seed=11, clock=utcnow), count)


async def prefill(broker: str, prefix: str, count: int, customers: int, keyed: bool = True) -> int:
    """Produce ``count`` demo records; returns how many were valid. ``keyed``: as the README
    asks backends to (``source_key``); otherwise without keys (every event is forwarded)."""
    by_source: dict[str, list[tuple[bytes | None, bytes]]] = {}
    valid = 0
    for source, raw in demo_records(count, customers):
        key = source_key(raw)
        valid += key is not None
        by_source.setdefault(source, []).append((key if keyed else None, raw))
    for source, records in by_source.items():
        await produce_bulk(broker, f"{prefix}events.{source}", records)
    return valid


@dataclass
class Drained:
    """One drain of pre-filled traffic."""

    rate: float
    """Events per second from the first input to the last outcome."""
    cpu_us_per_event: float
    """Worker CPU (all processes, all threads) per event over the same span."""
    batch_inputs: float
    """Mean inputs per customer-agent batch over the whole run."""
    batch_sizes: dict[str, float]
    """Share of batches with at most N inputs (``Fleet.batch_sizes``)."""


POLL_S = 0.5
"""How often the drain reads the workers' /metrics: a scrape costs the worker a few ms of its
main thread, and at 10 per second it took about 7% of it (py-spy)."""


def drain(
    broker: str,
    redis: str,
    workdir: Path,
    workers: int,
    count: int,
    keyed: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Drained:
    """Pre-fill ``count`` demo events and let ``workers`` workers drain them; ``extra_env`` is
    passed to the workers (an A/B of a setting)."""
    fleet = start_fleet(broker, redis, workdir, workers, extra_env=extra_env)
    try:
        valid = asyncio.run(prefill(broker, fleet.prefix, count, customers=5000, keyed=keyed))
        started = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            inputs, commands, outcomes = fleet.totals()
            now, cpu = time.perf_counter(), fleet.cpu_seconds()
            if started is None and inputs > 0:
                started, first, cpu_first = now, inputs, cpu
            if inputs >= valid and outcomes >= commands:
                assert started is not None
                events = max(inputs - first, 1.0)
                batches, batched = fleet.batches()
                drained = Drained(
                    rate=events / max(now - started, 1e-9),
                    cpu_us_per_event=(cpu - cpu_first) / events * 1e6,
                    batch_inputs=batched / max(batches, 1.0),
                    batch_sizes=fleet.batch_sizes(),
                )
                print(
                    f"[bench]   {workers} worker(s), {'keyed' if keyed else 'unkeyed'}: "
                    f"{drained.rate:,.0f} events/s, {drained.cpu_us_per_event:,.0f} CPU us/event, "
                    f"{drained.batch_inputs:.1f} inputs/batch "
                    f"({int(inputs)} events, {int(commands)} sends)",
                    file=sys.stderr,
                )
                return drained
            time.sleep(POLL_S)
        raise RuntimeError("pipeline did not drain in time")
    finally:
        fleet.stop()


def run(broker: str, redis: str, workdir: Path, quick: bool = False) -> dict[str, Any]:
    count = 20_000 if quick else 40_000
    repeats = 1 if quick else 3
    one, unkeyed, two, cpu, batch, sizes = [], [], [], [], [], []
    for _ in range(repeats):  # interleaved, so a slow stretch of the machine hits all three
        drained = drain(broker, redis, workdir, 1, count)
        one.append(drained.rate)
        cpu.append(drained.cpu_us_per_event)
        batch.append(drained.batch_inputs)
        sizes.append(drained.batch_sizes)
        unkeyed.append(drain(broker, redis, workdir, 1, count, keyed=False).rate)
        two.append(drain(broker, redis, workdir, 2, count).rate)
    rate = median(one)
    results: dict[str, Any] = {
        "pipeline_1_worker_per_s": rate,
        "pipeline_1_worker_cpu_us_per_event": median(cpu),
        "pipeline_1_worker_inputs_per_batch": median(batch),
        "pipeline_1_worker_batch_sizes": sizes,
        "pipeline_1_worker_unkeyed_per_s": median(unkeyed),
        "pipeline_2_workers_per_s": median(two),
        "pipeline_runs_1": one,
        "pipeline_runs_1_unkeyed": unkeyed,
        "pipeline_runs_2": two,
        "latency_rate_per_s": rate / 2,
    }
    return results


if __name__ == "__main__":
    import json
    import tempfile

    with devstack.embedded() as (b, r):
        print(json.dumps(run(b.url, r.url, Path(tempfile.mkdtemp()), quick=True), indent=2))
