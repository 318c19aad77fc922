"""Viber callbacks: signed with the bot token, resolved through the message-token index.

The send goes through the real provider against a local HTTP stand-in (wrapped by
``IndexingProvider`` as the wiring does), then signed callbacks go through ``ReceiptHandler``.
The index runs on memory and, marked ``integration``, on the real Redis.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from omnistream.channels.message_tokens import IndexingProvider
from omnistream.channels.receipts import ReceiptHandler
from omnistream.observability.metrics import REGISTRY
from omnistream.ports import MessageIndex, Outgoing, ReceiptRejected, SentMessage
from omnistream.providers.base import hmac_sha256_hex
from omnistream.providers.viber import ViberProvider
from omnistream.storage.memory import MemoryDedupStore
from omnistream.storage.message_index import MemoryMessageIndex, RedisMessageIndex
from tests.providers.conftest import FakeServer, Reply
from tests.providers.test_http_providers import outgoing
from tests.unit.channels.factory import T0

TOKEN = "viber-bot-token"
USER = "01234567890A="
MS = int(T0.timestamp() * 1000)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def index(request: pytest.FixtureRequest) -> AsyncIterator[MessageIndex]:
    if request.param == "memory":
        yield MemoryMessageIndex()
        return
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield RedisMessageIndex(client, prefix=f"t{uuid.uuid4().hex[:8]}:")
    finally:
        await client.aclose()


@pytest.fixture
async def viber(http_server: FakeServer, index: MessageIndex) -> AsyncIterator[IndexingProvider]:
    provider = IndexingProvider(ViberProvider(http_server.url, SecretStr(TOKEN), "Shop"), index)
    try:
        yield provider
    finally:
        await provider.aclose()


def handler_for(provider: Any, index: MessageIndex | None) -> ReceiptHandler:
    return ReceiptHandler(
        {"viber": provider},
        MemoryDedupStore(),
        prefix=f"t{uuid.uuid4().hex[:8]}:",
        channels={"viber": ["viber"]},
        index=index,
    )


def callback(event: str, **fields: Any) -> tuple[dict[str, str], bytes]:
    body = orjson.dumps({"event": event, "timestamp": MS, **fields})
    return {"X-Viber-Content-Signature": hmac_sha256_hex(TOKEN, body)}, body


def unmatched(reason: str) -> float:
    labels = {"provider": "viber", "reason": reason}
    return REGISTRY.get_sample_value("omnistream_receipts_unmatched_total", labels) or 0.0


async def sent(http_server: FakeServer, viber: IndexingProvider, out: Outgoing, token: int) -> None:
    http_server.answer(Reply(200, {"status": 0, "status_message": "ok", "message_token": token}))
    result = await viber.send(out)
    assert result.provider_message_id == str(token)


async def test_delivered_seen_failed_name_the_send(
    http_server: FakeServer, viber: IndexingProvider, index: MessageIndex
) -> None:
    await sent(http_server, viber, outgoing("viber", USER), 5741311803571721087)
    handler = handler_for(viber, index)
    events = []
    for event, extra in (("delivered", {}), ("seen", {}), ("failed", {"desc": "not delivered"})):
        headers, body = callback(event, message_token=5741311803571721087, user_id=USER, **extra)
        events += await handler.handle_webhook("viber", headers, body, T0 + timedelta(seconds=5))
    assert [e.type for e in events] == [
        "message_delivered",
        "message_opened",
        "message_delivery_failed",
    ]
    for event in events:
        assert event.customer_id == "cust-1" and event.timestamp == T0
        assert event.properties["send_id"] == "send-1"
        assert event.properties["channel"] == "viber"
        assert event.properties["provider_message_id"] == "5741311803571721087"
    assert events[2].properties["error"] == "not delivered"


async def test_unknown_token_is_accepted_and_counted(
    viber: IndexingProvider, index: MessageIndex
) -> None:
    before = unmatched("unknown_message")
    headers, body = callback("delivered", message_token=42, user_id=USER)
    assert await handler_for(viber, index).handle_webhook("viber", headers, body, T0) == []
    assert unmatched("unknown_message") == before + 1


async def test_unsubscribed_goes_to_the_latest_customer_of_that_user(
    http_server: FakeServer, viber: IndexingProvider, index: MessageIndex
) -> None:
    first = outgoing("viber", USER)
    await sent(http_server, viber, first, 1)
    later = dataclasses.replace(first, send_id="send-2", customer_key="cust-2")
    await sent(http_server, viber, later, 2)
    headers, body = callback("unsubscribed", user_id=USER)
    (event,) = await handler_for(viber, index).handle_webhook("viber", headers, body, T0)
    assert event.type == "message_unsubscribed" and event.customer_id == "cust-2"
    assert event.properties["channel"] == "viber" and event.properties["send_id"] == "send-2"
    headers, body = callback("unsubscribed", user_id="someone-else")
    before = unmatched("unknown_recipient")
    assert await handler_for(viber, index).handle_webhook("viber", headers, body, T0) == []
    assert unmatched("unknown_recipient") == before + 1


@pytest.mark.parametrize(
    "signature",
    [None, "", "00" * 32, hmac_sha256_hex("another-bot", b"{}")],
)
async def test_unsigned_or_forged_is_401(
    viber: IndexingProvider, index: MessageIndex, signature: str | None
) -> None:
    _, body = callback("delivered", message_token=1, user_id=USER)
    headers = {} if signature is None else {"X-Viber-Content-Signature": signature}
    with pytest.raises(ReceiptRejected) as refused:
        await handler_for(viber, index).handle_webhook("viber", headers, body, T0)
    assert refused.value.status == 401


async def test_tampered_body_is_401(viber: IndexingProvider, index: MessageIndex) -> None:
    headers, body = callback("delivered", message_token=1, user_id=USER)
    with pytest.raises(ReceiptRejected) as refused:
        await handler_for(viber, index).handle_webhook(
            "viber", headers, body.replace(b"delivered", b"seen"), T0
        )
    assert refused.value.status == 401


async def test_empty_bot_token_verifies_nothing(index: MessageIndex) -> None:
    provider = ViberProvider("http://unused", SecretStr(" "), "Shop")
    body = b'{"event":"delivered","timestamp":1,"message_token":1}'
    headers = {"X-Viber-Content-Signature": hmac_sha256_hex(" ", body)}
    with pytest.raises(ReceiptRejected) as refused:
        await handler_for(provider, index).handle_webhook("viber", headers, body, T0)
    assert refused.value.status == 401


async def test_replayed_callback_is_409(
    http_server: FakeServer, viber: IndexingProvider, index: MessageIndex
) -> None:
    await sent(http_server, viber, outgoing("viber", USER), 7)
    handler = handler_for(viber, index)
    headers, body = callback("seen", message_token=7, user_id=USER)
    assert len(await handler.handle_webhook("viber", headers, body, T0)) == 1
    with pytest.raises(ReceiptRejected) as refused:
        await handler.handle_webhook("viber", headers, body, T0)
    assert refused.value.status == 409


async def test_stale_callback_is_ignored(
    http_server: FakeServer, viber: IndexingProvider, index: MessageIndex
) -> None:
    await sent(http_server, viber, outgoing("viber", USER), 8)
    headers, body = callback("seen", message_token=8, user_id=USER)
    before = unmatched("stale")
    later = T0 + timedelta(hours=13)
    assert await handler_for(viber, index).handle_webhook("viber", headers, body, later) == []
    assert unmatched("stale") == before + 1


@pytest.mark.parametrize("event", ["subscribed", "conversation_started", "webhook", "message"])
async def test_non_outcome_events_are_accepted_empty(
    viber: IndexingProvider, index: MessageIndex, event: str
) -> None:
    headers, body = callback(event, user_id=USER)
    assert await handler_for(viber, index).handle_webhook("viber", headers, body, T0) == []


@pytest.mark.parametrize(
    "payload",
    [{"event": "delivered"}, {"event": "delivered", "timestamp": MS}, {"timestamp": MS}],
)
async def test_malformed_callback_is_400(
    viber: IndexingProvider, index: MessageIndex, payload: dict[str, Any]
) -> None:
    body = orjson.dumps(payload)
    headers = {"X-Viber-Content-Signature": hmac_sha256_hex(TOKEN, body)}
    with pytest.raises(ReceiptRejected) as refused:
        await handler_for(viber, index).handle_webhook("viber", headers, body, T0)
    assert refused.value.status == 400


class _BrokenIndex(MemoryMessageIndex):
    async def remember(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("redis down")


async def test_an_index_failure_does_not_fail_the_send(http_server: FakeServer) -> None:
    provider = IndexingProvider(
        ViberProvider(http_server.url, SecretStr(TOKEN), "Shop"), _BrokenIndex()
    )
    try:
        await sent(http_server, provider, outgoing("viber", USER), 9)
    finally:
        await provider.aclose()
    labels = {"provider": "viber"}
    assert REGISTRY.get_sample_value("omnistream_message_index_write_failures_total", labels)


async def test_index_entries_expire(index: MessageIndex) -> None:
    sent_message = SentMessage("send-1", "cust-1", "viber")
    await index.remember("viber", "tok-1", USER, sent_message, ttl_ms=60_000)
    assert await index.by_message("viber", "tok-1") == sent_message
    assert await index.by_recipient("viber", USER) == sent_message
    assert await index.by_message("viber", "tok-2") is None
    await index.remember("viber", "tok-short", "u-2", sent_message, ttl_ms=1)
    await asyncio.sleep(0.05)
    assert await index.by_message("viber", "tok-short") is None
    assert await index.by_recipient("viber", "u-2") is None
