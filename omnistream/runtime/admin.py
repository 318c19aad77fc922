"""Operator actions that go through the topics like any other input (so ordering holds).

Erasure has one path: ``omnistream customers forget`` writes a ``forget_customer`` event with the
system source to ``omni.customer-events``, the internal topic only omnistream's own principal
may write (docs/security.md). Source topics refuse it (ingest, reason ``reserved``), so a
producer can never erase a customer. The producer here is built with the same bootstrap parsing
and Kafka TLS/SASL settings as the worker (``OMNISTREAM_KAFKA_*``), so erasure reaches a secured
cluster too.
"""

from __future__ import annotations

import hashlib

from aiokafka import AIOKafkaProducer

from omnistream.clock import utcnow
from omnistream.config import Settings
from omnistream.domain.events import Event
from omnistream.domain.identity import route_key
from omnistream.domain.vocabulary import FORGET_EVENT, SYSTEM_SOURCE
from omnistream.ops.kafka_admin import bootstrap_servers
from omnistream.ops.kafka_security import KafkaSecurity

__all__ = ["admin_producer", "forget_event", "produce_forget"]


def forget_event(customer_id: str, request_id: str | None = None) -> Event:
    """The right-to-erasure request for ``customer_id`` (a customer id, not a row key)."""
    event_id = request_id or "forget-" + hashlib.sha256(customer_id.encode()).hexdigest()[:24]
    return Event(
        event_id=event_id,
        type=FORGET_EVENT,
        source=SYSTEM_SOURCE,
        customer_id=customer_id,
        timestamp=utcnow(),
    )


def admin_producer(settings: Settings, security: KafkaSecurity) -> AIOKafkaProducer:
    """A producer for operator actions, configured exactly as the worker reaches Kafka."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(settings.broker),
        acks="all",
        **security.aiokafka_kwargs(),
    )


async def produce_forget(
    settings: Settings,
    customer_id: str,
    request_id: str | None,
    security: KafkaSecurity,
) -> str:
    """Queue the erasure of ``customer_id`` on the customer topic; returns the request's id."""
    event = forget_event(customer_id, request_id)
    producer = admin_producer(settings, security)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.customer_events_topic, event.to_json(), key=route_key(event).encode()
        )
    finally:
        await producer.stop()
    return event.event_id
