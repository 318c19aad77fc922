"""A scripted run through a real worker: the journey event stream it produces, and the stats the
worker keeps in its Faust table, must agree with an independent count of the stream.

The stats are read from the table's changelog (what every worker's global table is built from)
and from the worker's internal route; the counting helper here reads omni.journey-events and
counts by hand, without omnistream's stats code.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from omnistream.domain.journey_stats import cells_in_window, summary

from .conftest import Stack, Worker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

JOURNEY = """
id: promo
name: Promo
trigger: {event: signed_up}
entry: {control_percent: 25}
goal: {event: order_placed}
steps:
  - id: pick
    type: split
    paths:
      - {name: short, weight: 1, next: mail_short}
      - {name: long, weight: 1, next: mail_long}
  - id: mail_short
    type: send
    channels: [email]
    category: transactional
    content:
      email: {subject: "Hi", body: "Short"}
    next: hold
  - id: mail_long
    type: send
    channels: [email]
    category: transactional
    content:
      email: {subject: "Hello", body: "A longer one"}
    next: hold
  - id: hold
    type: wait_for
    event: order_placed
    timeout: 7d
"""
POLICIES = """
channel_costs: {email: 0.002}
cost_currency: USD
"""
CUSTOMERS = [f"c-{i}" for i in range(30)]
BUYERS = CUSTOMERS[::3]  # 10 of them order


def envelope(event_id: str, type_: str, customer: str, **props: Any) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "type": type_,
            "source": "site",
            "customer_id": customer,
            "timestamp": datetime.now(UTC).isoformat(),
            "properties": props,
        }
    )


async def produce(stack: Stack, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker_url.removeprefix("kafka://"))
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(stack.topic("events.site"), value, key=key.encode())
    finally:
        await producer.stop()


async def read_all(stack: Stack, topic: str) -> list[Any]:
    """Every record of ``topic`` now (reads until a fetch brings nothing for 1.5 s)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.broker_url.removeprefix("kafka://"),
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        idle = 0
        while idle < 3:
            batch = await consumer.getmany(timeout_ms=500)
            got = [m for msgs in batch.values() for m in msgs]
            records.extend(got)
            idle = 0 if got else idle + 1
    finally:
        await consumer.stop()
    return records


def stream(stack: Stack) -> list[dict[str, Any]]:
    messages = asyncio.run(read_all(stack, stack.topic("journey-events")))
    records = [orjson.loads(m.value) for m in messages]
    for message, record in zip(messages, records, strict=True):
        assert message.key.decode() == record["customer_key"]  # keyed by customer
    return records


def table_buckets(stack: Stack, journey: str) -> dict[str, Any]:
    """The stats table as its changelog has it: last value per key, partitions summed."""
    messages = asyncio.run(read_all(stack, f"{stack.app_id}-journey-stats-changelog"))
    latest = {m.key: m.value for m in messages}
    buckets: dict[str, Any] = {}
    for key, value in latest.items():
        name, bucket, _partition = key.decode().split("\x1f")
        if name != journey or not value:
            continue
        cells = buckets.setdefault(bucket, {"n": {}, "c": {}})
        for part, values in orjson.loads(value).items():
            for cell, v in values.items():
                cells[part][cell] = cells[part].get(cell, 0) + v
    return buckets


def independent_counts(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Counted from the stream by hand (no omnistream stats code)."""
    mine = [r for r in records if r["journey_id"] == "promo"]
    kinds = Counter(r["kind"] for r in mine)
    steps = Counter((r["step_id"] or "-", r["kind"]) for r in mine)
    outcomes = Counter((r["channel"], r["outcome"]) for r in mine if r["kind"] == "outcome")
    entered = Counter(r["control"] for r in mine if r["kind"] == "entered")
    goals = Counter(r["control"] for r in mine if r["kind"] == "goal")
    treated = [r for r in mine if not r["control"]]
    split = Counter(r["path"] for r in treated if r["kind"] == "step" and r["step_id"] == "pick")
    converted = Counter(r["path"] for r in treated if r["kind"] == "goal")
    exits = Counter(
        (r["step_id"] or "-", r["reason"] or "-") for r in mine if r["kind"] == "exited"
    )
    return {
        "exits": dict(exits),
        "kinds": dict(kinds),
        "steps": dict(steps),
        "outcomes": dict(outcomes),
        "treatment": (entered[False], goals[False]),
        "control": (entered[True], goals[True]),
        "split": dict(split),
        "converted": dict(converted),
        "cost": sum(r["cost"] or 0 for r in mine),
    }


def from_table(figures: dict[str, Any]) -> dict[str, Any]:
    steps = {(s, k): n for s, kinds in figures["steps"].items() for k, n in kinds.items()}
    outcomes = {
        (ch, o): n for ch, by in figures["outcomes"].items() for o, n in by.items() if o != "-"
    }
    variants = figures["variants"]
    control = figures["control"]
    return {
        "exits": {(s, r): n for s, by in figures["exits"].items() for r, n in by.items()},
        "kinds": figures["by_kind"],
        "steps": steps,
        "outcomes": outcomes,
        "treatment": (control["treatment"]["entered"], control["treatment"]["converted"]),
        "control": (control["control"]["entered"], control["control"]["converted"]),
        "split": {name.split("=")[1]: v["entered"] for name, v in variants.items()},
        "converted": {
            name.split("=")[1]: v["converted"] for name, v in variants.items() if v["converted"]
        },
        "cost": figures["cost"]["total"],
    }


def test_stats_equal_an_independent_count_of_the_stream(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    (stack.journeys_dir / "promo.yaml").write_text(JOURNEY)
    (stack.journeys_dir / "policies.yaml").write_text(POLICIES)
    worker = start_worker()
    signups = [
        (c, envelope(f"s-{c}", "signed_up", c, traits={"email": f"{c}@example.com"}))
        for c in CUSTOMERS
    ]
    asyncio.run(produce(stack, signups))
    orders = [(c, envelope(f"o-{c}", "order_placed", c, order_id=f"o-{c}")) for c in BUYERS]

    def sends_done() -> bool:
        records = stream(stack)
        sent = sum(1 for r in records if r["outcome"] == "sent")
        return sent > 0 and sent == sum(1 for r in records if r["kind"] == "send")

    wait_until(sends_done, 90, lambda: f"send outcomes\n{worker.log_tail()}")
    asyncio.run(produce(stack, orders))
    wait_until(
        lambda: sum(1 for r in stream(stack) if r["kind"] == "goal") == len(BUYERS),
        60,
        lambda: f"goals\n{worker.log_tail()}",
    )
    records = stream(stack)
    expected = independent_counts(records)
    assert expected["kinds"]["entered"] == len(CUSTOMERS)
    assert sum(expected["exits"].values()) == expected["kinds"]["exited"] > 0
    assert expected["control"][0] > 0 and expected["treatment"][0] > 0
    assert set(expected["split"]) == {"short", "long"}
    assert expected["cost"] == pytest.approx(0.002 * expected["kinds"]["send"])
    assert len({r["record_id"] for r in records}) == len(records)  # no repeats without a crash

    got: dict[str, Any] = {}

    def stats_match() -> bool:
        now = datetime.now(UTC)
        buckets = table_buckets(stack, "promo")
        figures = summary(cells_in_window(buckets, now, "day"), "USD")
        got.clear()
        got.update(from_table(figures))
        same = {k: v for k, v in got.items() if k != "cost"} == {
            k: v for k, v in expected.items() if k != "cost"
        }
        return same and got["cost"] == pytest.approx(expected["cost"])

    wait_until(stats_match, 60, lambda: f"stats {got} == counted {expected}")

    # The internal route answers the same figures, with the token only.
    status, body = worker.fetch("/journeys/promo/stats?window=day")
    assert status == 200, body
    assert from_table(orjson.loads(body)) == got
    status, body = worker.fetch("/journeys/stats?window=30d")
    assert status == 200, body
    (headline,) = orjson.loads(body)["journeys"]
    assert (headline["entered"], headline["goals"]) == (len(CUSTOMERS), len(BUYERS))
    assert headline["currency"] == "USD"
    assert worker.fetch("/journeys/promo/stats", token=False)[0] == 401
    assert worker.fetch("/journeys/promo/stats?window=year")[0] == 400
    assert worker.fetch("/journeys/nope/stats")[0] == 404
    assert worker.proc.poll() is None


def test_stats_survive_partitions_moving_between_workers(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    """Partitions move w0 -> w1 -> w0 while entries are counted. The stats of a partition must
    come back with it: a worker that counts on from a stale copy of a moved partition's buckets
    overwrites the other worker's counts (a global table's copy does not follow the other
    workers' writes, faust #283), and a record read again by a partition's new owner must not
    be counted again (39-45 for 36 before the table kept each partition's counted offset)."""
    (stack.journeys_dir / "promo.yaml").write_text(JOURNEY)
    (stack.journeys_dir / "policies.yaml").write_text(POLICIES)
    groups = [[f"m{g}-{i}" for i in range(12)] for g in range(3)]

    def sign_up(customers: list[str]) -> None:
        records = [
            (c, envelope(f"s-{c}", "signed_up", c, traits={"email": f"{c}@example.com"}))
            for c in customers
        ]
        asyncio.run(produce(stack, records))

    def entered_in_stream() -> int:
        return sum(1 for r in stream(stack) if r["kind"] == "entered")

    def entered_in_stats(worker: Worker) -> int | None:
        status, body = worker.fetch("/journeys/promo/stats?window=day")
        if status != 200:
            return None
        figures = orjson.loads(body)
        if figures["partitions_missing"]:
            return None
        return int(figures["by_kind"].get("entered", 0))

    w0 = start_worker("w0")
    sign_up(groups[0])
    wait_until(lambda: entered_in_stats(w0) == 12, 60, lambda: w0.log_tail())
    w1 = start_worker("w1")  # some partitions move to w1, which counts on
    sign_up(groups[1])
    wait_until(lambda: entered_in_stream() == 24, 60, lambda: w1.log_tail())
    wait_until(lambda: entered_in_stats(w1) == 24, 60, lambda: f"{entered_in_stats(w1)}")
    w1.stop()  # ...and back to w0, which must count on from w1's figures, not its own old ones
    sign_up(groups[2])
    wait_until(lambda: entered_in_stream() == 36, 60, lambda: w0.log_tail())
    got: list[int | None] = []

    def counted() -> bool:
        got.append(entered_in_stats(w0))
        return got[-1] == 36

    def diagnose() -> str:
        records = [r for r in stream(stack) if r["kind"] == "entered"]
        unique = len({r["record_id"] for r in records})
        return f"stats said {got[-5:]}; the stream has {len(records)} entries, {unique} distinct"

    wait_until(counted, 60, diagnose)
