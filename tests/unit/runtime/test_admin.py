"""``omnistream customers forget`` reaches Kafka as the worker does (bootstrap list, TLS/SASL)."""

from __future__ import annotations

import ssl
from datetime import timedelta

import pytest

from omnistream.config import Settings
from omnistream.domain.events import EventError, check_producer_event, parse_event
from omnistream.ops.kafka_security import KafkaSecurity
from omnistream.runtime.admin import admin_producer, forget_event


async def test_admin_producer_uses_kafka_security_and_every_bootstrap_server() -> None:
    settings = Settings(broker="kafka://k1:9093;kafka://k2:9093,k3:9093")
    security = KafkaSecurity(
        security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", username="ops",
        password="s3cret",
    )  # fmt: skip
    producer = admin_producer(settings, security)
    await producer.stop()  # never started: nothing to close, but aiokafka wants to be told
    client = producer.client
    assert client._bootstrap_servers == ["k1:9093", "k2:9093", "k3:9093"]
    assert client._security_protocol == "SASL_SSL"
    assert client._sasl_mechanism == "SCRAM-SHA-512"
    assert client._sasl_plain_username == "ops"
    assert client._sasl_plain_password == "s3cret"
    assert isinstance(client._ssl_context, ssl.SSLContext)


def test_forget_request_is_a_system_event_that_no_source_topic_accepts() -> None:
    event = forget_event("c-42")
    assert event.source == "omnistream"
    with pytest.raises(EventError, match="reserved"):
        check_producer_event(parse_event(event.to_json()), event.timestamp, timedelta())


def test_forget_request_id_is_stable_per_customer() -> None:
    assert forget_event("c-42").event_id == forget_event("c-42").event_id
    assert forget_event("c-42").event_id != forget_event("c-43").event_id
    assert forget_event("c-42", "req-1").event_id == "req-1"
