"""``FastTopic``: a plain send goes straight to the app's producer (no Faust message
plumbing), is counted when the broker answers, and anything else takes Faust's own path."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust

from omnistream.observability.metrics import REGISTRY
from omnistream.runtime.fast_topic import FastTopic


class FakeProducer:
    """Records each send; its delivery is a future the test resolves."""

    def __init__(self) -> None:
        self.started = False
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.deliveries: list[asyncio.Future[Any]] = []

    async def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        self.calls.append((args, kwargs))
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery


def topic_with(producer: FakeProducer, tmp_path: Path, name: str) -> FastTopic:
    app = faust.App(f"direct-{name}", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))

    async def started() -> FakeProducer:
        return producer

    app.maybe_start_producer = started  # type: ignore[method-assign]
    app.producer = producer
    return FastTopic(
        app, topics=[name], key_type=bytes, value_type=bytes,
        key_serializer="raw", value_serializer="raw",
    )  # fmt: skip


def produced(topic: str) -> float:
    return (
        REGISTRY.get_sample_value("omnistream_kafka_produced_records_total", {"topic": topic})
        or 0.0
    )


def errors(topic: str) -> float:
    return (
        REGISTRY.get_sample_value("omnistream_kafka_produce_errors_total", {"topic": topic}) or 0.0
    )


def test_a_plain_send_goes_to_the_producer_and_is_counted_when_acknowledged(tmp_path: Path) -> None:
    producer = FakeProducer()
    topic = topic_with(producer, tmp_path, "t.direct-ok")

    async def main() -> None:
        before = produced("t.direct-ok")
        delivery = await topic.send(key=b"c1", value=b"{}")
        assert producer.calls == [(("t.direct-ok", b"c1", b"{}", None, None, None), {})]
        assert delivery is producer.deliveries[0]  # what the customer batch waits for
        await asyncio.sleep(0)
        assert produced("t.direct-ok") == before  # not before the broker answered
        delivery.set_result("metadata")
        await asyncio.sleep(0)
        assert produced("t.direct-ok") == before + 1

    asyncio.run(main())


def test_a_failed_record_is_counted_as_an_error(tmp_path: Path) -> None:
    producer = FakeProducer()
    topic = topic_with(producer, tmp_path, "t.direct-failed")

    async def main() -> None:
        before = errors("t.direct-failed")
        delivery = await topic.send(key=b"c1", value=b"{}")
        delivery.set_exception(RuntimeError("broker gone"))
        await asyncio.sleep(0)
        assert errors("t.direct-failed") == before + 1
        assert produced("t.direct-failed") == 0

    asyncio.run(main())


def test_a_send_with_a_partition_or_headers_takes_fausts_own_path(tmp_path: Path) -> None:
    """Faust's path passes them by keyword, and calls the sensors (the DLQ's reason header)."""
    producer = FakeProducer()
    topic = topic_with(producer, tmp_path, "t.direct-partition")

    async def main() -> None:
        await topic.send(key=b"c1", value=b"{}", partition=2)
        await topic.send(key=b"c1", value=b"{}", headers=[("omnistream.reason", b"invalid")])
        assert producer.calls[0][1]["partition"] == 2
        assert producer.calls[1][1]["headers"] == [("omnistream.reason", b"invalid")]

    asyncio.run(main())


def test_publishing_skips_the_producer_start_once_it_runs(tmp_path: Path) -> None:
    """Faust's ``maybe_start_producer`` turns the event loop three times per record
    (``@stampede``); a running producer is used as it is."""
    producer = FakeProducer()
    topic = topic_with(producer, tmp_path, "t.direct-started")
    producer.started = True
    asked: list[bool] = []

    async def never() -> FakeProducer:
        asked.append(True)
        return producer

    topic.app.maybe_start_producer = never

    async def main() -> None:
        assert await topic._get_producer() is producer
        assert not asked
        producer.started = False
        assert await topic._get_producer() is producer
        assert asked == [True]  # before it started: Faust starts it

    asyncio.run(main())


def test_a_clone_stays_direct(tmp_path: Path) -> None:
    """Agents iterate a clone of the topic they subscribe to."""
    topic = topic_with(FakeProducer(), tmp_path, "t.direct-clone")
    assert isinstance(topic.clone(is_iterator=False), FastTopic)
