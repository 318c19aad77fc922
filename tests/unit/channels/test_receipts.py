"""Delivery receipts: signature, skew, replay, and the events they become."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlencode

import orjson
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from omnistream.channels.receipts import ReceiptHandler
from omnistream.ports import DedupStore, ReceiptRejected
from omnistream.providers.base import sign_timestamped
from omnistream.providers.log import LogProvider
from omnistream.providers.twilio import TwilioProvider, TwilioSettings, twilio_signature
from omnistream.providers.webhook import WebhookProvider
from omnistream.storage.memory import MemoryDedupStore
from omnistream.storage.redis_dedup import RedisDedupStore
from tests.unit.channels.factory import T0

SECRET = "whsec-test"
CALLBACK = "https://hooks.example/webhooks/twilio?c=cust-1&s=send-1"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def replay(request: pytest.FixtureRequest) -> AsyncIterator[DedupStore]:
    if request.param == "memory":
        yield MemoryDedupStore()
        return
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield RedisDedupStore(client)
    finally:
        await client.aclose()


@pytest.fixture
def handler(replay: DedupStore) -> ReceiptHandler:
    import uuid

    twilio = TwilioProvider(TwilioSettings(account_sid="AC1", auth_token=SecretStr("tok")))
    return ReceiptHandler(
        {
            "webhook": WebhookProvider("http://unused", SecretStr(SECRET)),
            "twilio": twilio,
            "log": LogProvider(),
        },
        replay,
        prefix=f"t{uuid.uuid4().hex[:8]}:",
    )


def signed(events: list[dict[str, str]], at: int | None = None) -> tuple[dict[str, str], bytes]:
    body = orjson.dumps({"events": events})
    stamp = int(T0.timestamp()) if at is None else at
    return {"x-omnistream-signature": sign_timestamped(SECRET, body, stamp)}, body


OPEN = {"id": "evt-1", "type": "opened", "send_id": "send-1", "customer_key": "cust-1"}
CLICK = {
    "id": "evt-2",
    "type": "clicked",
    "send_id": "send-1",
    "customer_key": "anon:dev-1",
    "occurred_at": "2026-03-02T08:59:00+00:00",
    "url": "https://shop.example/sale",
}


async def test_signed_callbacks_become_events(handler: ReceiptHandler) -> None:
    headers, body = signed([OPEN, CLICK])
    opened, clicked = await handler.handle_webhook("webhook", headers, body, T0)
    assert opened.type == "message_opened" and opened.customer_id == "cust-1"
    assert opened.properties == {"send_id": "send-1", "provider": "webhook", "status": "opened"}
    assert opened.timestamp == T0
    assert clicked.type == "message_clicked" and clicked.anonymous_id == "dev-1"
    assert clicked.properties["url"] == "https://shop.example/sale"
    assert clicked.timestamp == T0 - timedelta(minutes=1)
    assert opened.event_id != clicked.event_id


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing signature"),
        ({"X-Omnistream-Signature": "t=1,v1=00"}, "bad signature"),
        ({"X-Omnistream-Signature": "nonsense"}, "malformed signature"),
    ],
)
async def test_unsigned_or_forged_is_401(
    handler: ReceiptHandler, headers: dict[str, str], reason: str
) -> None:
    _, body = signed([OPEN])
    with pytest.raises(ReceiptRejected) as caught:
        await handler.handle_webhook("webhook", headers, body, T0)
    assert (caught.value.status, caught.value.reason) == (401, reason)


async def test_tampered_body_is_401(handler: ReceiptHandler) -> None:
    headers, _ = signed([OPEN])
    _, other = signed([{**OPEN, "customer_key": "someone-else"}])
    with pytest.raises(ReceiptRejected) as caught:
        await handler.handle_webhook("webhook", headers, other, T0)
    assert caught.value.status == 401


async def test_old_signature_is_401(handler: ReceiptHandler) -> None:
    headers, body = signed([OPEN], at=int(T0.timestamp()) - 301)
    with pytest.raises(ReceiptRejected) as caught:
        await handler.handle_webhook("webhook", headers, body, T0)
    assert caught.value.reason == "timestamp outside the allowed skew"


async def test_replayed_request_is_409(handler: ReceiptHandler) -> None:
    headers, body = signed([OPEN])
    assert len(await handler.handle_webhook("webhook", headers, body, T0)) == 1
    with pytest.raises(ReceiptRejected) as caught:
        await handler.handle_webhook("webhook", headers, body, T0 + timedelta(seconds=5))
    assert caught.value.status == 409
    # A new request carrying one seen and one new event yields only the new one.
    headers, body = signed([OPEN, CLICK])
    [only] = await handler.handle_webhook("webhook", headers, body, T0)
    assert only.type == "message_clicked"


async def test_unknown_provider_oversize_and_no_receipts(handler: ReceiptHandler) -> None:
    statuses = []
    for name, body in [("nope", b"{}"), ("webhook", b"x" * 70_000), ("log", b"{}")]:
        with pytest.raises(ReceiptRejected) as caught:
            await handler.handle_webhook(name, {}, body, T0)
        statuses.append(caught.value.status)
    assert statuses == [404, 413, 404]


async def test_malformed_payload_is_400(handler: ReceiptHandler) -> None:
    headers, body = signed([{"id": "x", "type": "exploded", "send_id": "s", "customer_key": "c"}])
    with pytest.raises(ReceiptRejected) as caught:
        await handler.handle_webhook("webhook", headers, body, T0)
    assert caught.value.status == 400


def twilio_form(status: str) -> dict[str, str]:
    return {"MessageSid": "SM123", "MessageStatus": status, "AccountSid": "AC1", "To": "+1555"}


async def test_twilio_status_callback(handler: ReceiptHandler) -> None:
    form = twilio_form("delivered")
    headers = {"X-Twilio-Signature": twilio_signature("tok", CALLBACK, form)}
    [event] = await handler.handle_webhook(
        "twilio", headers, urlencode(form).encode(), T0, url=CALLBACK
    )
    assert event.type == "message_delivered" and event.customer_id == "cust-1"
    assert event.properties["send_id"] == "send-1"
    assert event.properties["provider_message_id"] == "SM123"
    sent_only = twilio_form("sent")
    headers = {"X-Twilio-Signature": twilio_signature("tok", CALLBACK, sent_only)}
    assert (
        await handler.handle_webhook(
            "twilio", headers, urlencode(sent_only).encode(), T0, url=CALLBACK
        )
        == []
    )


async def test_twilio_signature_covers_the_url(handler: ReceiptHandler) -> None:
    form = twilio_form("delivered")
    headers = {"X-Twilio-Signature": twilio_signature("tok", CALLBACK, form)}
    forged_url = CALLBACK.replace("c=cust-1", "c=victim")
    with pytest.raises(ReceiptRejected) as caught:
        await handler.handle_webhook(
            "twilio", headers, urlencode(form).encode(), T0, url=forged_url
        )
    assert caught.value.status == 401


async def test_a_provider_serving_one_channel_names_it_on_its_receipts(
    replay: DedupStore,
) -> None:
    import uuid

    webhook = WebhookProvider("http://unused", SecretStr(SECRET))
    single = ReceiptHandler(
        {"webhook": webhook}, replay, prefix=f"t{uuid.uuid4().hex[:8]}:",
        channels={"webhook": ["sms"]},
    )  # fmt: skip
    headers, body = signed([OPEN])
    (event,) = await single.handle_webhook("webhook", headers, body, T0)
    assert event.properties["channel"] == "sms"  # the profile counts the open on sms
    shared = ReceiptHandler(
        {"webhook": webhook}, replay, prefix=f"t{uuid.uuid4().hex[:8]}:",
        channels={"webhook": ["sms", "viber"]},
    )  # fmt: skip
    (event,) = await shared.handle_webhook("webhook", headers, body, T0)
    assert "channel" not in event.properties  # ambiguous: never guessed


async def test_a_rejected_receipt_burns_no_replay_key_of_a_good_one(
    handler: ReceiptHandler,
) -> None:
    bad = {"id": "evt-9", "type": "opened", "send_id": "send-1", "customer_key": "no spaces!"}
    headers, body = signed([OPEN, bad])
    with pytest.raises(ReceiptRejected) as caught:
        await handler.handle_webhook("webhook", headers, body, T0)
    assert caught.value.reason == "receipt fields are not valid"
    # The provider fixes the bad one and resends: the good receipt must still go through.
    headers, body = signed([OPEN])
    [opened] = await handler.handle_webhook("webhook", headers, body, T0)
    assert opened.type == "message_opened"


async def test_a_receipt_dated_in_the_future_is_clamped_to_now(handler: ReceiptHandler) -> None:
    future = {**OPEN, "occurred_at": "9999-12-31T00:00:00+00:00"}
    headers, body = signed([future])
    [opened] = await handler.handle_webhook("webhook", headers, body, T0)
    assert opened.timestamp == T0
