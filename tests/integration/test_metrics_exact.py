"""A known set of events through a real worker; the counters must come out exactly.

Valid events of known sources and types go to their source topics, invalid records of known
reasons go alongside, and a journey sends to one customer who has an email address and to one who
has none. Once the worker has committed everything (consumer lag 0 on every partition it owns),
each counter must equal what the inputs imply: not "at least", exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from omnistream.runtime.partitions import partition_of

from .conftest import Stack, Worker, wait_until
from .test_walking_skeleton import JOURNEY

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def event(event_id: str, type_: str, source: str, customer: str, **props: object) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "type": type_,
            "source": source,
            "customer_id": customer,
            "timestamp": "2026-11-24T10:00:00Z",
            "properties": props,
        }
    )


VALID: list[tuple[str, bytes]] = [
    # one customer's events on one topic: their order is the order we produce them in
    ("site", event("v1", "signed_up", "site", "c-1", traits={"email": "ada@example.com"})),
    ("site", event("v2", "page_viewed", "site", "c-1", url="/a")),
    ("site", event("v3", "order_placed", "site", "c-1", order_id="o-1", total=10)),
    ("app", event("v4", "page_viewed", "app", "c-2", url="/b")),
    ("app", event("v5", "order_placed", "app", "c-2", order_id="o-2", total=20)),
    ("crm", event("v6", "signed_up", "crm", "c-3")),
]
INVALID: list[tuple[str, bytes, str]] = [
    ("site", b"{not json", "malformed_json"),
    ("site", b"\xff\xfe", "malformed_json"),
    ("app", b"[1, 2]", "not_an_object"),
    ("crm", orjson.dumps({"event_id": "x1", "type": "t", "source": "crm",
                         "timestamp": "2026-11-24T10:00:00Z"}), "invalid"),  # no identity
]  # fmt: skip


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """The one sample with exactly these labels (0 when absent)."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def total(text: str, name: str) -> float:
    return sum(v for (n, _), v in samples(text).items() if n == name)


async def produce_records(stack: Stack, records: list[tuple[str, bytes]]) -> None:
    """Produce (source, raw value) pairs, in order, to the stack's source topics."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker_url.removeprefix("kafka://"))
    await producer.start()
    try:
        for source, raw in records:
            await producer.send_and_wait(stack.topic(f"events.{source}"), raw, key=b"k")
    finally:
        await producer.stop()


def quiet(worker: Worker) -> bool:
    """Both sends reported and every partition this worker consumes committed to the end."""
    text = worker.metrics()
    lag_series = [
        v for (n, _), v in samples(text).items() if n == "omnistream_consumer_lag_records"
    ]
    return (
        total(text, "omnistream_sends_total") >= 2
        and value(text, "omnistream_customer_inputs_total", kind="outcome") >= 2
        and bool(lag_series)
        and all(v == 0 for v in lag_series)
    )


def test_exact_counters(stack: Stack, start_worker: Callable[..., Worker]) -> None:
    (stack.journeys_dir / "order_confirmation.yaml").write_text(JOURNEY)
    worker = start_worker()
    asyncio.run(produce_records(stack, [*VALID, *((src, raw) for src, raw, _ in INVALID)]))
    wait_until(lambda: quiet(worker), 60, f"a quiet worker\n{worker.log_tail()}")
    text = worker.metrics()

    ingested = {
        dict(labels)["source"] + "/" + dict(labels)["type"]: v
        for (name, labels), v in samples(text).items()
        if name == "omnistream_events_ingested_total"
    }
    assert ingested == {
        "site/signed_up": 1,
        "site/page_viewed": 1,
        "site/order_placed": 1,
        "app/page_viewed": 1,
        "app/order_placed": 1,
        "crm/signed_up": 1,
    }
    # every record is keyed b"k": only customers whose own partition is k's are handled in place
    customers = [orjson.loads(raw)["customer_id"].encode() for _, raw in VALID]
    direct = sum(partition_of(c, 4) == partition_of(b"k", 4) for c in customers)
    assert value(text, "omnistream_ingest_routes_total", route="direct") == direct
    assert value(text, "omnistream_ingest_routes_total", route="forwarded") == len(VALID) - direct
    rejected = {
        (dict(labels)["topic"], dict(labels)["reason"]): v
        for (name, labels), v in samples(text).items()
        if name == "omnistream_events_rejected_total"
    }
    assert rejected == {
        (stack.topic("events.site"), "malformed_json"): 2,
        (stack.topic("events.app"), "not_an_object"): 1,
        (stack.topic("events.crm"), "invalid"): 1,
    }
    # the DLQ counter counts broker acknowledgements, by the reason in the record's headers
    assert value(text, "omnistream_dlq_records_total", reason="malformed_json") == 2
    assert value(text, "omnistream_dlq_records_total", reason="not_an_object") == 1
    assert value(text, "omnistream_dlq_records_total", reason="invalid") == 1
    assert total(text, "omnistream_dlq_records_total") == len(INVALID)

    assert value(text, "omnistream_customer_inputs_total", kind="event") == len(VALID)
    assert value(text, "omnistream_events_duplicate_total") == 0
    assert total(text, "omnistream_journey_entries_total") == 2
    assert (
        value(
            text, "omnistream_journey_entries_total", journey="order_confirmation", control="false"
        )
        == 2
    )
    assert (
        value(text, "omnistream_send_commands_total", channel="email", category="transactional")
        == 2
    )
    outcomes = {
        dict(labels)["outcome"]: v
        for (name, labels), v in samples(text).items()
        if name == "omnistream_sends_total"
    }
    assert outcomes == {"sent": 1, "suppressed": 1}  # c-2 has no email address
    assert (
        value(text, "omnistream_send_suppressed_total", channel="email", reason="no_address") == 1
    )
    assert value(text, "omnistream_event_to_send_seconds_count", channel="email") == 1
    assert value(text, "omnistream_stage_seconds_count", stage="ingest") == len(VALID)
    assert len(stack.sends()) == 1
