"""A scheduled broadcast on the real broker and Redis, with a rebalance in the middle of the scan.

Customers are created by a first worker, which then stops. A broadcast journey due now (``on``
today, ``at`` two minutes ago, in UTC) is added, worker A starts and begins scanning (slowed
down: 5 rows per chunk, 1 s pause), and worker B joins while A scans, taking half the
partitions over with their progress. Every customer of the audience must get exactly one
message for the occurrence, and nobody outside it any.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from .conftest import Stack, Worker, wait_until
from .test_walking_skeleton import counter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

CUSTOMERS = 240
SEGMENTS = """
segments:
  regulars:
    when: profile.traits.regular == true
"""
SLOW_SCAN = {"OMNISTREAM_BROADCAST_CHUNK_ROWS": "5", "OMNISTREAM_BROADCAST_CHUNK_PAUSE_S": "1.0"}
FAST_TICK = {"OMNISTREAM_BROADCAST_TICK_S": "0.5"}


def journey(now: datetime) -> str:
    at = now - timedelta(minutes=2)
    return f"""
id: flash_sale
name: Flash sale
trigger:
  schedule: {{on: "{at.date().isoformat()}", at: "{at:%H:%M}", late: 6h}}
  audience: regulars
steps:
  - id: announce
    type: send
    channels: [email]
    content:
      email: {{subject: "Flash sale", body: "Flash sale for {{{{ profile.traits.name }}}}"}}
"""


def regular(n: int) -> bool:
    return n % 3 != 0


def customer_events(n: int) -> list[bytes]:
    customer = f"c-{n:04}"
    stamp = datetime.now(UTC).isoformat()
    traits = {"email": f"{customer}@example.com", "name": customer, "regular": regular(n)}
    consent = {"channel": "email", "category": "marketing", "granted": True}
    return [
        orjson.dumps({"event_id": f"{customer}-{kind}", "type": kind, "source": "app",
                      "customer_id": customer, "timestamp": stamp, "properties": props})
        for kind, props in (("signed_up", {"traits": traits}), ("consent_updated", consent))
    ]  # fmt: skip


async def produce(stack: Stack, records: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker_url.removeprefix("kafka://"))
    await producer.start()
    try:
        for value in records:
            key = orjson.loads(value)["customer_id"].encode()
            await producer.send(stack.topic("events.app"), value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def rows_judged(worker: Worker) -> float:
    return counter(worker.metrics(), "omnistream_broadcast_rows_total")


def figures(worker: Worker) -> dict[str, float]:
    text = worker.metrics()
    result = {
        verdict: counter(text, "omnistream_broadcast_rows_total", result=verdict)
        for verdict in ("turn", "audience", "already", "missed")
    }
    result["partitions_done"] = counter(text, "omnistream_broadcast_partitions_done_total")
    result["duplicate_inputs"] = counter(text, "omnistream_events_duplicate_total")
    return result


AUDIENCE = {f"c-{n:04}" for n in range(CUSTOMERS) if regular(n)}


def load_customers(stack: Stack, start_worker: Callable[..., Worker]) -> None:
    """Create the customers with a first worker, stop it, and add the broadcast due now."""
    (stack.journeys_dir / "segments.yaml").write_text(SEGMENTS)
    loader = start_worker("loader")
    records = [r for n in range(CUSTOMERS) for r in customer_events(n)]
    asyncio.run(produce(stack, records))
    wait_until(
        lambda: (
            counter(loader.metrics(), "omnistream_customer_inputs_total", kind="event")
            >= len(records)
        ),
        60,
        lambda: f"the loader to handle {len(records)} events\n{loader.log_tail()}",
    )
    assert loader.stop() == 0
    (stack.journeys_dir / "flash_sale.yaml").write_text(journey(datetime.now(UTC)))


def sent(stack: Stack) -> Counter[str]:
    """Messages the provider got, per customer."""
    return Counter(str(line["customer_key"]) for line in stack.sends())


async def send_ids(stack: Stack) -> dict[str, set[str]]:
    """Distinct send ids per customer in omni.send.email (the send commands)."""
    consumer = AIOKafkaConsumer(
        stack.topic("send.email"),
        bootstrap_servers=stack.broker_url.removeprefix("kafka://"),
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    found: dict[str, set[str]] = {}
    try:
        while batch := await consumer.getmany(timeout_ms=2000):
            for records in batch.values():
                for record in records:
                    command = orjson.loads(record.value)
                    found.setdefault(command["customer_key"], set()).add(command["send_id"])
    finally:
        await consumer.stop()
    return found


def wait_for_everyone(stack: Stack, *workers: Worker) -> None:
    wait_until(
        lambda: set(sent(stack)) >= AUDIENCE,
        100,
        lambda: (
            f"{len(AUDIENCE - set(sent(stack)))} of {len(AUDIENCE)} customers to get the "
            + "message\n"
            + "\n".join(f"--- {w.log_path.name} ---\n{w.log_tail(30)}" for w in workers)
        ),
    )
    time.sleep(2)  # a repeated turn in flight would show as a second message by now


def test_every_customer_of_the_audience_once_across_a_rebalance(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    started = time.monotonic()
    load_customers(stack, start_worker)
    a = start_worker("a", **SLOW_SCAN, **FAST_TICK)
    wait_until(lambda: rows_judged(a) > 0, 30, lambda: f"A to start scanning\n{a.log_tail()}")
    b = start_worker("b", **SLOW_SCAN, **FAST_TICK)
    a_done_when_b_joined = figures(a)["partitions_done"]
    wait_for_everyone(stack, a, b)
    wait_until(
        lambda: figures(a)["partitions_done"] + figures(b)["partitions_done"] >= 4,
        30,
        "both workers to finish their partitions",
    )
    seen = sent(stack)
    fa, fb = figures(a), figures(b)
    judged = sum(fa[v] + fb[v] for v in ("turn", "audience", "already", "missed"))
    print(
        f"\naudience={len(AUDIENCE)} messaged={len(seen)} messages={sum(seen.values())} "
        f"rows_judged={judged:.0f} of {CUSTOMERS} A={fa} B={fb} "
        f"A_partitions_done_when_B_joined={a_done_when_b_joined} "
        f"elapsed={time.monotonic() - started:.1f}s"
    )
    assert set(seen) == AUDIENCE  # none skipped, nobody outside the audience
    assert [k for k, n in seen.items() if n > 1] == []  # nobody twice
    assert a_done_when_b_joined < 4  # B joined while A was still scanning
    assert judged >= CUSTOMERS  # every row judged by one of them (repeats: at most a chunk)
    assert fa["turn"] + fb["turn"] >= len(AUDIENCE)


def test_a_worker_killed_mid_scan_is_continued_not_repeated(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    """kill -9 while scanning; a fresh worker recovers rows and progress and finishes. One send
    command (one send id) per customer of the audience, whatever the turns repeated."""
    started = time.monotonic()
    load_customers(stack, start_worker)
    a = start_worker("a", **SLOW_SCAN, **FAST_TICK)
    wait_until(lambda: rows_judged(a) >= 60, 60, lambda: f"A to scan 60 rows\n{a.log_tail()}")
    before_kill = figures(a)
    a_turns, a_done = before_kill["turn"], before_kill["partitions_done"]
    a.proc.kill()
    a.proc.wait(10)
    b = start_worker("b", **FAST_TICK)
    wait_for_everyone(stack, b)
    wait_until(
        lambda: a_done + figures(b)["partitions_done"] >= 4, 30, "B to finish the partitions"
    )
    ids = asyncio.run(send_ids(stack))
    fb = figures(b)
    print(
        f"\naudience={len(AUDIENCE)} A_turns_before_kill>={a_turns:.0f} "
        f"A_partitions_done={a_done:.0f} B={fb} "
        f"repeated_turns<={a_turns + fb['turn'] - len(AUDIENCE):.0f} "
        f"messages={sum(sent(stack).values())} elapsed={time.monotonic() - started:.1f}s"
    )
    assert set(ids) == AUDIENCE  # none skipped, nobody outside the audience
    assert {k: v for k, v in ids.items() if len(v) > 1} == {}  # one entry, one send id each
    assert fb["turn"] < len(AUDIENCE)  # B continued from A's progress, it did not start over
