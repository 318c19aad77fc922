"""The same events file through the in-process harness and through a real worker (real broker,
Redis and the `log` provider writing sends to a file): the same sends come out, ids included.

Send ids are deterministic (from the instance and step), so the comparison is exact: a difference
in routing, identity, the engine input or the dispatcher's consent/address/fallback decisions
shows up as a missing, extra or differently-keyed send.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from omnistream.channels.dispatcher import Dispatch
from omnistream.domain.commands import Send
from omnistream.domain.events import parse_event
from omnistream.harness.clock import ManualClock
from omnistream.harness.delivery import Delivery
from omnistream.harness.run import Harness
from omnistream.journey.loader import load_catalog

from .conftest import Stack, Worker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

JOURNEY = """
id: order_confirmation
name: Order confirmation
trigger: {event: order_placed}
steps:
  - id: confirm
    type: send
    channels: [sms, email]
    category: transactional
    content:
      sms:
        body: "Order {{ event.properties.order_id }} confirmed."
      email:
        subject: "Order {{ event.properties.order_id }}"
        body: "Thanks {{ profile.traits.first_name }}, order {{ event.properties.order_id }}."
"""
AT = "2026-11-24T10:00:00+00:00"

Sent = tuple[str, str, str, str, str]
"""(send id, customer key, journey, step, channel) of a delivered message."""


def envelope(event_id: str, type_: str, customer: str, **props: Any) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "type": type_,
            "source": "site",
            "customer_id": customer,
            "timestamp": AT,
            "properties": props,
        }
    )


EVENTS = [
    # c-1: email only, so the SMS falls back (no address) and the email goes
    envelope("e1", "signed_up", "c-1", traits={"first_name": "Ada", "email": "ada@example.com"}),
    envelope("e2", "order_placed", "c-1", order_id="o-1", total=10),
    # c-2: a phone number: the SMS goes
    envelope("e3", "signed_up", "c-2", traits={"first_name": "Bo", "phone": "+380501112233"}),
    envelope("e4", "order_placed", "c-2", order_id="o-2", total=20),
    # c-3: no contact at all: nothing is delivered
    envelope("e5", "order_placed", "c-3", order_id="o-3", total=30),
    # c-4: both, ordering twice (two instances, two sends)
    envelope("e6", "signed_up", "c-4", traits={"email": "d@example.com", "phone": "+380671112233"}),
    envelope("e7", "order_placed", "c-4", order_id="o-4", total=40),
    envelope("e8", "order_placed", "c-4", order_id="o-5", total=50),
]


def harness_sends(stack: Stack) -> set[Sent]:
    catalog = load_catalog(stack.journeys_dir)
    start = datetime.fromisoformat(AT)
    harness = Harness(catalog, ManualClock(start), delivery=Delivery())
    sent: set[Sent] = set()

    def observe(_at: datetime, send: Send, result: Dispatch) -> None:
        if any(event.type == "message_sent" for event in result.outcomes):
            sent.add((send.send_id, send.customer_key, send.journey_id, send.step_id, send.channel))

    harness.dispatch_observers.append(observe)
    for raw in EVENTS:
        harness.publish(parse_event(raw))
    harness.run_until(start + timedelta(hours=1))
    return sent


def worker_sends(stack: Stack) -> set[Sent]:
    return {
        (
            str(line["send_id"]),
            str(line["customer_key"]),
            str(line["journey_id"]),
            str(line["step_id"]),
            str(line["channel"]),
        )
        for line in stack.sends()
    }


async def produce(stack: Stack) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker_url.removeprefix("kafka://"))
    await producer.start()
    try:
        for value in EVENTS:  # one key: arrival order is the file's order
            await producer.send_and_wait(stack.topic("events.site"), value, key=b"backend-1")
    finally:
        await producer.stop()


def test_harness_and_worker_deliver_the_same_sends(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    (stack.journeys_dir / "order_confirmation.yaml").write_text(JOURNEY)
    expected = harness_sends(stack)
    assert {(s[1], s[4]) for s in expected} == {
        ("c-1", "email"),
        ("c-2", "sms"),
        ("c-4", "sms"),
    }
    assert len(expected) == 4  # c-4 ordered twice
    worker = start_worker()
    asyncio.run(produce(stack))
    wait_until(
        lambda: len(stack.sends()) >= len(expected),
        90,
        lambda: f"{len(expected)} sends; got {stack.sends()}\n{worker.log_tail()}",
    )
    time.sleep(3)  # a send the harness did not make would show up by now
    assert worker_sends(stack) == expected
    assert len(stack.sends()) == len(expected)  # nothing sent twice
