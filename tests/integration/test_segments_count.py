"""``omnistream segments count`` against a real worker (Tansu + Redis): the worker counts the rows
of its partitions through ``GET /segments/{name}/count`` behind the token, the CLI sums them and
says which partitions answered; an unknown segment exits 2 with the names, a dead worker is named
on stderr, a wrong token is refused."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from omnistream import devstack

from .conftest import Stack, Worker, wait_until
from .test_walking_skeleton import counter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

SEGMENTS = """
segments:
  big_spenders:
    when: profile.traits.spent >= 100
  vip:
    when: in_segment("big_spenders") and profile.traits.vip == true
"""
SPENT = [5, 150, 99, 100, 250, 0, 180, 40, 101, 7, 300, 60]  # 6 at or above 100
VIP = {1, 4, 9, 10}  # three of them big spenders (150, 250, 300); 9 spent 7: not in "vip"


def events() -> list[bytes]:
    return [
        orjson.dumps({"event_id": f"e-{n}", "type": "signed_up", "source": "app",
                      "customer_id": f"c-{n:03}", "timestamp": "2026-11-24T10:00:00Z",
                      "properties": {"traits": {"spent": spent, "vip": n in VIP}}})
        for n, spent in enumerate(SPENT)
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


def cli(*args: str, token: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNISTREAM_")}
    if token is not None:
        env["OMNISTREAM_INTERNAL_TOKENS"] = token
    return subprocess.run(
        [sys.executable, "-m", "omnistream", "segments", "count", *args, "--timeout", "20"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def counted(worker: Worker, name: str) -> int:
    status, body = worker.fetch(f"/segments/{name}/count")
    return sum(json.loads(body)["partitions"].values()) if status == 200 else -1


def test_segments_count_through_the_workers(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    (stack.journeys_dir / "segments.yaml").write_text(SEGMENTS)
    worker = start_worker()
    asyncio.run(produce(stack, events()))
    wait_until(
        lambda: (
            counter(worker.metrics(), "omnistream_customer_inputs_total", kind="event")
            >= len(SPENT)
        ),
        60,
        lambda: f"the worker to handle {len(SPENT)} events\n{worker.log_tail()}",
    )
    wait_until(lambda: counted(worker, "big_spenders") == 6, 30, "the rows to be written")

    status, body = worker.fetch("/segments/big_spenders/count", token=False)
    assert status == 401, body  # the token middleware guards the route
    status, body = worker.fetch("/segments/big_spenders/count")
    answer = json.loads(body)
    assert answer["partition_count"] == 4 and sorted(answer["partitions"]) == ["0", "1", "2", "3"]
    assert answer["rows"] == len(SPENT) and answer["unreadable"] == 0

    done = cli("big_spenders", "--worker", worker.base_url, token=worker.token)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("big_spenders: 6 customers (partitions 0-3 of 4 answered, ")
    assert done.stderr == ""

    vip = cli("vip", "--worker", worker.base_url, token=worker.token)
    assert vip.returncode == 0 and vip.stdout.startswith("vip: 3 customers "), vip.stderr

    unknown = cli("big_spender", "--worker", worker.base_url, token=worker.token)
    assert unknown.returncode == 2
    assert "unknown segment 'big_spender'; known segments: big_spenders, vip" in unknown.stderr

    dead = f"http://127.0.0.1:{devstack.free_port()}"
    partial = cli("big_spenders", "--worker", worker.base_url, "--worker", dead, token=worker.token)
    assert partial.returncode == 0  # every partition answered: the dead worker owned none
    assert partial.stdout.startswith("big_spenders: 6 customers (partitions 0-3 of 4")
    assert f"{dead}: no answer" in partial.stderr

    refused = cli("big_spenders", "--worker", worker.base_url, token="wrong")
    assert refused.returncode == 1
    assert "401 unauthorized" in refused.stderr
    assert refused.stdout.startswith("big_spenders: no worker answered")
