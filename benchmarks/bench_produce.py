"""CPU per produced record, by the way the worker produces it (``runtime/fast_topic.py``).

One process, the embedded broker, 20,000 records of 700 bytes over 5,000 keys per path, each
path acknowledged before its figure is taken (process CPU time, so aiokafka's sender and the
acknowledgements are in every figure):

- ``aiokafka``: ``AIOKafkaProducer.send``, the floor;
- ``faust_send``: Faust's ``Topic.send``, what the worker used for its own records;
- ``fast_send``: ``FastTopic.send`` on the same app's producer, what it uses now;
- ``faust_send_soon`` / ``fast_send_soon``: ``send_soon`` + flush, the path of every table
  changelog record, with Faust's topic class and with the worker's.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiokafka import AIOKafkaProducer

from benchmarks.common import bootstrap, create_topic
from omnistream.runtime.fast_topic import FastTopic

__all__ = ["run"]

VALUE = b"x" * 700


async def _cpu_us_per_record(count: int, send: Callable[[bytes], Awaitable[Any]]) -> float:
    began = time.process_time()
    pending = [await send(str(n % 5000).encode()) for n in range(count)]
    await asyncio.gather(*pending)
    return (time.process_time() - began) / count * 1e6


async def _measure(broker: str, count: int, repeats: int) -> dict[str, list[float]]:
    for name in ("a", "f", "d", "s", "t"):
        await create_topic(broker, f"bench-produce-{name}", 4)
    runs: dict[str, list[float]] = {}
    plain = AIOKafkaProducer(bootstrap_servers=bootstrap(broker))
    await plain.start()
    app = faust.App(
        "bench-produce", broker=broker, autodiscover=False, key_serializer="raw",
        value_serializer="raw", datadir=tempfile.mkdtemp(prefix="omnistream-produce-"),
    )  # fmt: skip
    options: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
    faust_topic = app.topic("bench-produce-f", **options)
    fast = FastTopic(app, topics=["bench-produce-d"], **options)
    faust_soon = app.topic("bench-produce-s", **options)
    fast_soon = FastTopic(app, topics=["bench-produce-t"], **options)
    await app.producer.start()

    def soon(topic: Any) -> Callable[[bytes], Awaitable[Any]]:
        async def send_soon(key: bytes) -> Any:
            return topic.send_soon(key=key, value=VALUE)

        return send_soon

    try:
        for _ in range(repeats):  # interleaved: a slow stretch of the machine hits every path
            paths: dict[str, Callable[[bytes], Awaitable[Any]]] = {
                "aiokafka": lambda key: plain.send("bench-produce-a", VALUE, key=key),
                "faust_send": lambda key: faust_topic.send(key=key, value=VALUE),
                "fast_send": lambda key: fast.send(key=key, value=VALUE),
                "faust_send_soon": soon(faust_soon),
                "fast_send_soon": soon(fast_soon),
            }
            for name, send in paths.items():
                runs.setdefault(name, []).append(await _cpu_us_per_record(count, send))
    finally:
        await app.producer.stop()
        await plain.stop()
    return runs


def run(broker: str, quick: bool = False) -> dict[str, Any]:
    count = 5_000 if quick else 20_000
    repeats = 1 if quick else 3
    runs = asyncio.run(_measure(broker, count, repeats))
    results: dict[str, Any] = {
        f"produce_cpu_us_per_record_{name}": statistics.median(values)
        for name, values in runs.items()
    }
    results["produce_runs"] = runs
    return results
