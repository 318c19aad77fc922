"""Operator actions that go through the topics like any other input (so ordering holds)."""

from __future__ import annotations

import hashlib

from aiokafka import AIOKafkaProducer

from omnistream.clock import utcnow
from omnistream.config import Settings
from omnistream.domain.events import Event
from omnistream.domain.identity import FORGET_EVENT, route_key

__all__ = ["forget_event", "produce_forget"]


def forget_event(customer_id: str, request_id: str | None = None) -> Event:
    """The right-to-erasure request for ``customer_id`` (a customer id, not a row key)."""
    event_id = request_id or "forget-" + hashlib.sha256(customer_id.encode()).hexdigest()[:24]
    return Event(
        event_id=event_id,
        type=FORGET_EVENT,
        source="crm",
        customer_id=customer_id,
        timestamp=utcnow(),
    )


async def produce_forget(settings: Settings, customer_id: str, request_id: str | None) -> str:
    event = forget_event(customer_id, request_id)
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.removeprefix("kafka://"))
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic("events.crm"), event.to_json(), key=route_key(event).encode()
        )
    finally:
        await producer.stop()
    return event.event_id
