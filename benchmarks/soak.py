"""`make soak` / `python -m benchmarks.soak`: kill -9 workers under keyed traffic, then count.

Each run starts the embedded broker and Redis, two workers (the integration tests' settings:
rebalance 3 s, session 6 s, fetch wait 10 ms, no recovery consistency check) with two journeys:
an immediate transactional email per order, and a push 20 s after a cart unless the customer
ordered. It produces seeded keyed traffic (benchmarks/soak_check.py), kills workers with kill -9
at seeded moments (one of the kills takes both down), restarts each after 2-15 s, waits for
quiescence, and prints ``lost / duplicated / sent-after-purchase / early / max resume`` computed
only from what it produced and what the ``log`` provider wrote. Exit status 1 if any of the
first four is not zero. Every process it started is stopped at the end, also on Ctrl-C.
Logs and the sends file stay in ``--workdir`` (default ``var/soak/seed-<seed>/``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.common import bootstrap
from benchmarks.soak_check import (
    Kill,
    Planned,
    PlannedKill,
    Produced,
    SendLine,
    Verdict,
    make_plan,
    plan_kills,
    verdict,
)
from omnistream import devstack
from omnistream.clock import utcnow
from omnistream.dev import wait_ready

__all__ = ["main", "run_once"]

CONFIRMATION = """
id: soak_order_confirmation
name: Order confirmation (immediate)
trigger: {event: order_placed}
entry: {reentry: always, max_instances: 100}
steps:
  - id: confirm
    type: send
    channels: [email]
    category: transactional
    content:
      email: {subject: "Order {{ event.properties.order_id }}", body: "Thanks!"}
"""
CART = """
id: soak_cart
name: Cart push unless the customer orders within 20 s
trigger: {event: cart_updated}
entry: {reentry: never}
policies: {quiet_hours: null, send_window: null}
steps:
  - id: wait_for_order
    type: wait_for
    event: order_placed
    timeout: 20s
    on_event: bought
    on_timeout: cart_push
  - id: cart_push
    type: send
    channels: [mobile_push]
    content:
      mobile_push: {subject: "Still there?", body: "Your cart is waiting"}
  - id: bought
    type: exit
    reason: purchased
"""


@dataclass(frozen=True)
class Options:
    seed: int
    customers: int
    events: int
    kills: int
    duration: float
    settle: float
    max_wait: float
    workdir: Path
    store: str = "memory://"


@dataclass
class Slot:
    """One of the two workers: restarted in place (same data directory) after each kill."""

    index: int
    workdir: Path
    base_env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    public_url: str = ""

    def start(self) -> subprocess.Popen[bytes]:
        self.starts += 1
        env = dict(self.base_env)
        public = devstack.free_port()
        env.update(
            OMNISTREAM_WEB_PORT=str(devstack.free_port()),
            OMNISTREAM_PUBLIC_PORT=str(public),
            OMNISTREAM_DATA_DIR=str(self.workdir / f"w{self.index}"),
        )
        log_path = self.workdir / f"w{self.index}-{self.starts}.log"
        proc, log = devstack.spawn(
            f"w{self.index}",
            [sys.executable, "-m", "omnistream", "worker"],
            log_path=log_path,
            env=env,
        )
        if log is not None:
            log.close()  # the child has its own descriptor
        self.proc = proc
        self.public_url = f"http://127.0.0.1:{public}"
        return proc

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no commit, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            devstack.EmbeddedServer(f"w{self.index}", self.proc, "", 0).stop()


@dataclass
class Run:
    options: Options
    plan: list[Planned]
    buyers: set[str]
    kills_planned: list[PlannedKill]
    slots: list[Slot]
    sends_path: Path
    topic: str
    produced: list[Produced] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    restarts: list[asyncio.Task[None]] = field(default_factory=list)


def worker_env(
    opts: Options, broker: str, redis: str, journeys: Path, sends: Path
) -> dict[str, str]:
    run = f"soak{opts.seed}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNISTREAM_")}
    env.update(
        OMNISTREAM_BROKER=broker, OMNISTREAM_REDIS_URL=redis, OMNISTREAM_TOPIC_PREFIX=f"{run}.",
        OMNISTREAM_APP_ID=run, OMNISTREAM_JOURNEYS_DIR=str(journeys),
        OMNISTREAM_PROVIDER_LOG_PATH=str(sends),  # redacted (the default): ids and times stay
        OMNISTREAM_REBALANCE_TIMEOUT_S="3", OMNISTREAM_SESSION_TIMEOUT_S="6",
        OMNISTREAM_FETCH_MAX_WAIT_MS="10", OMNISTREAM_RECOVERY_CONSISTENCY_CHECK="false",
        OMNISTREAM_PARTITIONS="4", OMNISTREAM_CHANNELS_REDIS_PREFIX=f"{run}:",
        OMNISTREAM_INTERNAL_TOKENS=secrets.token_urlsafe(32), OMNISTREAM_STORE=opts.store,
    )  # fmt: skip
    return env


def event_value(item: Planned, at: datetime) -> bytes:
    props: dict[str, Any] = {
        "signed_up": {"traits": {"email": f"{item.customer}@example.com"}},
        "push_token_registered": {"token": f"token-{item.customer}"},
        "consent_updated": {"channel": "mobile_push", "category": "marketing", "granted": True},
        "cart_updated": {"items": [{"product_id": "p-1", "name": "Sneakers"}]},
        "order_placed": {"order_id": f"{item.customer}-{item.seq}"},
        "product_viewed": {"product_id": "p-1"},
    }
    return orjson.dumps({
        "event_id": f"{item.customer}-{item.seq}", "type": item.type, "source": "app",
        "customer_id": item.customer, "timestamp": at.isoformat(),
        "properties": props[item.type],
    })  # fmt: skip


async def traffic(run: Run, broker: str, started: float) -> None:
    """Produce the plan on time, keyed by customer (a customer's events stay in order)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(broker), linger_ms=5)
    await producer.start()
    try:
        pending: list[asyncio.Future[Any]] = []
        for item in run.plan:
            delay = started + item.at - time.monotonic()
            if delay > 0:
                await asyncio.gather(*pending)
                pending.clear()
                await asyncio.sleep(delay)
            at = utcnow()
            value = event_value(item, at)
            pending.append(await producer.send(run.topic, value, key=item.customer.encode()))
            run.produced.append(Produced(item.customer, item.type, at))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def chaos(run: Run, started: float) -> None:
    """Kill at the planned moments (only workers that are up) and restart each one later."""
    for planned in run.kills_planned:
        await asyncio.sleep(max(0.0, started + planned.at - time.monotonic()))
        victims = tuple(i for i in planned.victims if run.slots[i].alive)
        if not victims:
            victims = tuple(s.index for s in run.slots if s.alive)[:1]
        if not victims:
            continue
        at = utcnow()
        for i in victims:
            run.slots[i].kill()
        run.kills.append(Kill(at, victims))
        print(f"  {time.monotonic() - started:6.1f}s kill -9 {' '.join(f'w{i}' for i in victims)} "
              f"(restart in {planned.restart_after:.1f}s)", flush=True)  # fmt: skip
        for i in victims:
            run.restarts.append(asyncio.create_task(restart(run.slots[i], planned.restart_after)))


async def restart(slot: Slot, after: float) -> None:
    await asyncio.sleep(after)
    if not slot.alive:
        slot.start()


def read_sends(path: Path) -> list[SendLine]:
    """The provider's lines; a line a kill cut short would be reported, not skipped."""
    if not path.exists():
        return []
    lines = []
    for text in path.read_text().splitlines():
        data = orjson.loads(text)
        lines.append(
            SendLine(
                str(data["send_id"]),
                str(data["customer_key"]),
                str(data["step_id"]),
                datetime.fromisoformat(str(data["sent_at"])),
            )
        )
    return lines


async def quiesce(run: Run) -> Verdict:
    """Wait until every expected send was seen and nothing new came for ``settle`` seconds, or
    ``max_wait`` passed; then judge."""
    opts = run.options
    deadline = time.monotonic() + opts.max_wait
    last_count, quiet_since = -1, time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        sends = read_sends(run.sends_path)
        result = verdict(run.produced, sends, run.buyers, run.kills)
        now = time.monotonic()
        if len(sends) != last_count:
            last_count, quiet_since = len(sends), now
        settled = not result.lost and now - quiet_since >= opts.settle
        if settled or now >= deadline:
            return result


def save_inputs(run: Run, path: Path) -> None:
    """What the verdict was computed from besides ``sends.jsonl``, to judge a run again later
    (``soak_check.verdict``) without running it again."""
    inputs = {
        "produced": [[p.customer, p.type, p.at.isoformat()] for p in run.produced],
        "buyers": sorted(run.buyers),
        "kills": [[k.at.isoformat(), list(k.victims)] for k in run.kills],
    }
    path.write_bytes(orjson.dumps(inputs))


async def run_once(opts: Options) -> tuple[Verdict, list[Kill]]:
    rng = random.Random(opts.seed)  # noqa: S311 - a reproducible plan, not a secret
    plan, buyers = make_plan(rng, opts.customers, opts.events, opts.duration)
    kills = plan_kills(rng, opts.kills, 8.0, opts.duration + 25.0)
    opts.workdir.mkdir(parents=True, exist_ok=True)
    journeys = opts.workdir / "journeys"
    journeys.mkdir(exist_ok=True)
    (journeys / "confirmation.yaml").write_text(CONFIRMATION)
    (journeys / "cart.yaml").write_text(CART)
    sends = opts.workdir / "sends.jsonl"
    sends.unlink(missing_ok=True)
    with devstack.embedded(opts.workdir) as (broker, redis):
        env = worker_env(opts, broker.url, redis.url, journeys, sends)
        slots = [Slot(i, opts.workdir, env) for i in range(2)]
        run = Run(opts, plan, buyers, kills, slots, sends, f"soak{opts.seed}.events.app")
        try:
            result = await _drive(run, broker.url)
            save_inputs(run, opts.workdir / "verdict-inputs.json")
            if result.failed:
                await diagnose(broker.url, f"soak{opts.seed}.", result, opts.workdir)
            return result, run.kills
        finally:
            for task in run.restarts:
                task.cancel()
            for slot in slots:
                slot.stop()


async def _drive(run: Run, broker: str) -> Verdict:
    for slot in run.slots:
        slot.start()
    for slot in run.slots:
        assert slot.proc is not None
        await asyncio.to_thread(wait_ready, slot.public_url, slot.proc, 120.0)
    started = time.monotonic()
    print(f"  workers ready; {len(run.plan)} events for {run.options.customers} customers over "
          f"{run.options.duration:.0f}s, {len(run.kills_planned)} kills", flush=True)  # fmt: skip
    await asyncio.gather(traffic(run, broker, started), chaos(run, started))
    await asyncio.gather(*run.restarts, return_exceptions=True)
    return await quiesce(run)


async def diagnose(broker: str, prefix: str, result: Verdict, workdir: Path) -> None:
    """After a failed run only, for the report (the verdict never reads this): every record of
    the affected customers on the source, customer-events, send and DLQ topics, to see where a
    send was lost or doubled. Written to ``<workdir>/diagnosis.txt``."""
    problems = result.lost + result.duplicated + result.after_purchase + result.early
    keys = {p.split(" ", 1)[0].encode() for p in problems if p.startswith("soak-")}
    topics = [f"{prefix}{t}" for t in ("events.app", "customer-events", "send.email",
                                       "send.mobile_push", "dlq")]  # fmt: skip
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap(broker), auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    lines = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=3000, max_records=5000)
            if not batch:
                break
            for records in batch.values():
                lines += [
                    f"{r.topic}[{r.partition}]@{r.offset} ts={r.timestamp} key={r.key!r} "
                    f"{r.value[:2000]!r}"
                    for r in records
                    if r.key in keys or any(b'"' + k + b'"' in r.value for k in keys)
                ]
    finally:
        await consumer.stop()
    (workdir / "diagnosis.txt").write_text("\n".join(lines) + "\n")
    print(f"  records of the affected customers: {workdir / 'diagnosis.txt'}", flush=True)


def report(opts: Options, run_verdict: Verdict, kills: list[Kill]) -> None:
    both = sum(len(k.victims) > 1 for k in kills)
    print(f"seed {opts.seed}: {run_verdict.line()}  kills {len(kills)} (both down {both})")
    for name in ("lost", "duplicated", "after_purchase", "early"):
        for detail in getattr(run_verdict, name)[:10]:
            print(f"  {name}: {detail}")
    figures = zip(kills, run_verdict.resume_s, strict=False)
    described = [f"{k.at:%H:%M:%S} w{'+w'.join(map(str, k.victims))} {s:.1f}" for k, s in figures]
    print("  resume s per kill: " + ", ".join(described), flush=True)
    for kill, worst in zip(kills, run_verdict.resume_worst, strict=False):
        print(f"    kill {kill.at:%H:%M:%S.%f}: {worst}")


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, int]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--seed", type=int, default=1, help="first run's seed (then +1 per run)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--kills", type=int, default=5, help="kill -9 moments per run")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of traffic")
    parser.add_argument("--settle", type=float, default=15.0, help="quiet seconds to call it done")
    parser.add_argument("--max-wait", type=float, default=180.0, help="after the traffic")
    parser.add_argument("--workdir", type=Path, default=Path("var/soak"))
    parser.add_argument(
        "--store",
        choices=["memory://", "rocksdb://"],
        default="memory://",
        help="the workers' table store; a restarted worker keeps its RocksDB directory",
    )
    args = parser.parse_args(argv)
    return args, args.runs


def main(argv: list[str] | None = None) -> int:
    args, runs = parse(argv)

    def _on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # unwinds through every finally: all children are stopped

    signal.signal(signal.SIGTERM, _on_term)
    failed = 0
    summary: list[str] = []
    for n in range(runs):
        seed = args.seed + n
        opts = Options(
            seed, args.customers, args.events, args.kills, args.duration, args.settle,
            args.max_wait, args.workdir / f"seed-{seed}", args.store,
        )  # fmt: skip
        print(f"run {n + 1}/{runs}: seed {seed}, workdir {opts.workdir}", flush=True)
        try:
            result = asyncio.run(_timed(opts, summary))
        except KeyboardInterrupt:
            print("interrupted; every process stopped", file=sys.stderr)
            return 130
        failed += result.failed
    print("\nlost / duplicated / sent-after-purchase / early / max resume seconds, per run:")
    for line in summary:
        print(f"  {line}")
    return 1 if failed else 0


async def _timed(opts: Options, summary: list[str]) -> Verdict:
    began = time.monotonic()
    result, kills = await run_once(opts)
    both = sum(len(k.victims) > 1 for k in kills)
    report(opts, result, kills)
    summary.append(
        f"seed {opts.seed}: {result.line()} kills {len(kills)} (both down {both}), "
        f"{time.monotonic() - began:.0f}s"
    )
    return result


if __name__ == "__main__":
    sys.exit(main())
