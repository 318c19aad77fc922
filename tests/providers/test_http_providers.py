"""HTTP providers against a local server: the requests they make and how answers are handled."""

from __future__ import annotations

import base64

import orjson
import pytest
from pydantic import SecretStr

from omnistream.ports import Outgoing, ProviderError
from omnistream.providers.base import verify_timestamped
from omnistream.providers.fcm import FcmProvider
from omnistream.providers.telegram import TelegramProvider
from omnistream.providers.twilio import TwilioProvider, TwilioSettings
from omnistream.providers.viber import ViberProvider
from omnistream.providers.webhook import WebhookProvider
from tests.providers.conftest import FakeServer, Reply
from tests.unit.channels.factory import (
    T0,
    FakeTime,
    ScriptedProvider,
    make_send,
    memory_dispatcher,
    types,
)

SECRET = SecretStr("whsec-test")


def outgoing(channel: str = "sms", address: str = "+15550001") -> Outgoing:
    send = make_send()
    return Outgoing(
        send_id=send.send_id,
        customer_key=send.customer_key,
        channel=channel,
        address=address,
        message=send.messages[channel],
        category=send.category,
        journey_id=send.journey_id,
        step_id=send.step_id,
    )


def webhook(server: FakeServer, timeout_s: float = 5.0) -> WebhookProvider:
    return WebhookProvider(f"{server.url}/messages", SECRET, timeout_s, clock=lambda: T0)


async def test_webhook_posts_signed_json_with_idempotency_key(http_server: FakeServer) -> None:
    http_server.answer(Reply(200, {"id": "wh-77"}))
    provider = webhook(http_server)
    try:
        result = await provider.send(outgoing("email", "a@example.com"))
    finally:
        await provider.aclose()
    assert result.provider_message_id == "wh-77"
    [request] = http_server.requests
    assert (request.method, request.path) == ("POST", "/messages")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "send-1"
    signed_at = verify_timestamped(
        request.headers["x-omnistream-signature"], "whsec-test", request.body, T0
    )
    assert signed_at == int(T0.timestamp())
    payload = orjson.loads(request.body)
    assert payload["address"] == "a@example.com"
    assert payload["message"]["body"] == "Hello there"


async def test_500s_then_200_is_retried_and_sent_once(http_server: FakeServer) -> None:
    http_server.answer(Reply(500), Reply(503), Reply(200, {"id": "ok-1"}))
    time = FakeTime()
    dispatcher = memory_dispatcher(time, {"email": webhook(http_server)})
    try:
        first = await dispatcher.handle(make_send(chain=("email",)), T0)
        again = await dispatcher.handle(make_send(chain=("email",)), T0)
    finally:
        await dispatcher.aclose()
    assert types(first) == ["message_sent"]
    assert first.outcomes[0].properties["provider_message_id"] == "ok-1"
    assert again.outcomes == first.outcomes
    assert len(http_server.requests) == 3
    assert {r.headers["idempotency-key"] for r in http_server.requests} == {"send-1"}
    assert len(time.slept) == 2


async def test_429_waits_for_retry_after(http_server: FakeServer) -> None:
    http_server.answer(Reply(429, {"error": "slow down"}, {"Retry-After": "3"}), Reply(200, {}))
    time = FakeTime()
    dispatcher = memory_dispatcher(time, {"email": webhook(http_server)})
    try:
        result = await dispatcher.handle(make_send(chain=("email",)), T0)
    finally:
        await dispatcher.aclose()
    assert types(result) == ["message_sent"]
    assert time.slept == [3.0]


async def test_400_falls_back_to_the_next_channel(http_server: FakeServer) -> None:
    http_server.answer(Reply(400, {"error": "bad address"}))
    sms = ScriptedProvider("sms-p")
    dispatcher = memory_dispatcher(FakeTime(), {"email": webhook(http_server), "sms": sms})
    try:
        result = await dispatcher.handle(make_send(), T0)
        assert result.forward is not None
        follow = await dispatcher.handle(result.forward, T0)
    finally:
        await dispatcher.aclose()
    assert types(result) == ["message_failed", "message_fallback"]
    assert result.outcomes[0].properties["reason"] == "http_400"
    assert result.outcomes[1].properties["to_channel"] == "sms"
    assert len(http_server.requests) == 1  # permanent: not retried
    assert types(follow) == ["message_sent"]
    assert sms.calls[0].channel == "sms"


async def test_provider_down_for_the_whole_test(http_server: FakeServer) -> None:
    # Nothing listens on the URL: every attempt is refused.
    down = WebhookProvider("http://127.0.0.1:9/messages", SECRET, 1.0, clock=lambda: T0)
    other = ScriptedProvider("other")
    dispatcher = memory_dispatcher(FakeTime(), {"email": down, "sms": other})
    try:
        failed = await dispatcher.handle(make_send(chain=("email",)), T0)
        served = await dispatcher.handle(make_send("s2", customer_key="c2", chain=("sms",)), T0)
    finally:
        await dispatcher.aclose()
    assert types(failed) == ["message_failed"]
    assert failed.outcomes[0].properties["reason"] == "provider_unavailable"
    assert failed.outcomes[0].properties["error"] == "connection"
    assert types(served) == ["message_sent"]


async def test_timeout_is_transient(http_server: FakeServer) -> None:
    http_server.answer(Reply(200, {}, delay=2.0))
    provider = webhook(http_server, timeout_s=0.2)
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.send(outgoing())
    finally:
        await provider.aclose()
    assert (caught.value.reason, caught.value.transient) == ("timeout", True)


async def test_telegram_send_message(http_server: FakeServer) -> None:
    http_server.answer(
        Reply(429, {"ok": False, "error_code": 429, "parameters": {"retry_after": 5}}),
        Reply(200, {"ok": True, "result": {"message_id": 42, "chat": {"id": 1}}}),
    )
    provider = TelegramProvider(http_server.url, SecretStr("123:ABC"))
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.send(outgoing("telegram", "987654"))
        result = await provider.send(outgoing("telegram", "987654"))
    finally:
        await provider.aclose()
    assert caught.value.transient and caught.value.retry_after == 5
    assert result.provider_message_id == "42"
    request = http_server.requests[-1]
    assert (request.method, request.path) == ("POST", "/bot123:ABC/sendMessage")
    assert request.headers["content-type"].startswith("application/json")
    assert orjson.loads(request.body) == {"chat_id": "987654", "text": "Hi\n\nHello there"}


async def test_twilio_messages_create(http_server: FakeServer) -> None:
    http_server.answer(
        Reply(201, {"sid": "SM0123", "status": "queued"}),
        Reply(400, {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}),
    )
    own = TwilioSettings(
        base_url=http_server.url,
        account_sid="AC123",
        auth_token=SecretStr("tok"),
        from_number="+15550100",
        status_callback_url="https://hooks.example/webhooks/twilio",
    )
    provider = TwilioProvider(own)
    try:
        result = await provider.send(outgoing())
        with pytest.raises(ProviderError) as caught:
            await provider.send(outgoing())
    finally:
        await provider.aclose()
    assert result.provider_message_id == "SM0123"
    assert (caught.value.reason, caught.value.transient) == ("twilio_21211", False)
    request = http_server.requests[0]
    assert request.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"AC123:tok").decode()
    from urllib.parse import parse_qs

    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    assert form["To"] == "+15550001" and form["From"] == "+15550100"
    assert form["Body"] == "Hello there"
    assert form["StatusCallback"] == "https://hooks.example/webhooks/twilio?c=cust-1&s=send-1"


async def test_viber_send_message(http_server: FakeServer) -> None:
    http_server.answer(
        Reply(200, {"status": 0, "status_message": "ok", "message_token": 5741311803571721087}),
        Reply(200, {"status": 6, "status_message": "receiverNotSubscribed"}),
        Reply(200, {"status": 12, "status_message": "tooManyRequests"}),
    )
    provider = ViberProvider(http_server.url, SecretStr("vtok"), "Shop")
    try:
        result = await provider.send(outgoing("viber", "01234567890A="))
        with pytest.raises(ProviderError) as not_subscribed:
            await provider.send(outgoing("viber", "01234567890A="))
        with pytest.raises(ProviderError) as busy:
            await provider.send(outgoing("viber", "01234567890A="))
    finally:
        await provider.aclose()
    assert result.provider_message_id == "5741311803571721087"
    blocked = not_subscribed.value
    assert (blocked.reason, blocked.transient) == ("recipient_blocked", False)
    assert busy.value.transient
    request = http_server.requests[0]
    assert request.path == "/pa/send_message"
    assert request.headers["x-viber-auth-token"] == "vtok"
    body = orjson.loads(request.body)
    assert body["receiver"] == "01234567890A=" and body["type"] == "text"
    assert body["sender"] == {"name": "Shop"} and body["tracking_data"] == "send-1"
    assert body["text"] == "Hello there" and body["min_api_version"] == 1


async def test_fcm_v1_send(http_server: FakeServer) -> None:
    http_server.answer(
        Reply(200, {"name": "projects/shop/messages/0:1500415314455276%31bd1c9631bd1c96"}),
        Reply(404, {"error": {"code": 404, "message": "gone", "status": "NOT_FOUND",
                              "details": [{"errorCode": "UNREGISTERED"}]}}),
        Reply(503, {"error": {"code": 503, "status": "UNAVAILABLE"}}),
    )  # fmt: skip
    provider = FcmProvider(http_server.url, "shop", SecretStr("ya29.token"))
    try:
        result = await provider.send(outgoing("mobile_push", "device-token-1"))
        with pytest.raises(ProviderError) as gone:
            await provider.send(outgoing("mobile_push", "device-token-1"))
        with pytest.raises(ProviderError) as unavailable:
            await provider.send(outgoing("mobile_push", "device-token-1"))
    finally:
        await provider.aclose()
    assert result.provider_message_id is not None
    assert result.provider_message_id.startswith("projects/shop/messages/")
    assert (gone.value.reason, gone.value.transient) == ("token_unregistered", False)
    assert unavailable.value.transient
    request = http_server.requests[0]
    assert request.path == "/v1/projects/shop/messages:send"
    assert request.headers["authorization"] == "Bearer ya29.token"
    message = orjson.loads(request.body)["message"]
    assert message["token"] == "device-token-1"
    assert message["notification"] == {"title": "Hi", "body": "Hello there"}
    assert message["data"]["send_id"] == "send-1"
