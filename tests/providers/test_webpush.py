"""The webpush provider against a local push service: encrypted payload, VAPID, gone answers.

The test plays the browser too: it owns the subscription's private key and auth secret, so it
decrypts what arrived (RFC 8291 ``aes128gcm``) and checks the VAPID JWT (RFC 8292) with the
application server's public key.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import http_ece
import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pydantic import SecretStr

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.ports import ProviderError
from omnistream.providers.base import ADDRESS_INVALID
from omnistream.providers.errors import ProviderConfigError
from omnistream.providers.registry import build_provider, read_provider_settings
from omnistream.providers.webpush import SUBSCRIPTION_GONE, WebPushProvider, WebPushSettings
from tests.providers.conftest import FakeServer, Reply
from tests.providers.test_http_providers import outgoing
from tests.unit.channels.factory import T0


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


VAPID_KEY = ec.generate_private_key(ec.SECP256R1())
VAPID_RAW = b64url(VAPID_KEY.private_numbers().private_value.to_bytes(32, "big"))
BROWSER_KEY = ec.generate_private_key(ec.SECP256R1())
AUTH_SECRET = os.urandom(16)


def subscription(endpoint: str) -> str:
    keys = {"p256dh": b64url(point(BROWSER_KEY)), "auth": b64url(AUTH_SECRET)}
    return orjson.dumps({"endpoint": endpoint, "keys": keys}).decode()


def provider(**overrides: Any) -> WebPushProvider:
    values: dict[str, Any] = {
        "vapid_private_key": SecretStr(VAPID_RAW),
        "subject": "mailto:ops@shop.example",
        "ttl_s": 3600,
    }
    return WebPushProvider(WebPushSettings(**(values | overrides)), 5.0, clock=lambda: T0)


def verify_vapid(header: str, audience: str) -> dict[str, Any]:
    """Check ``vapid t=<jwt>,k=<key>`` the way a push service does; return the claims."""
    scheme, _, params = header.partition(" ")
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert scheme == "vapid" and unb64url(fields["k"]) == point(VAPID_KEY)
    signing_input, _, signature = fields["t"].rpartition(".")
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    VAPID_KEY.public_key().verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    claims: dict[str, Any] = orjson.loads(unb64url(signing_input.split(".")[1]))
    assert claims["aud"] == audience
    return claims


async def test_sends_an_encrypted_payload_with_vapid(http_server: FakeServer) -> None:
    http_server.answer(Reply(201, None, headers={"Location": f"{http_server.url}/m/1"}))
    webpush = provider()
    try:
        result = await webpush.send(outgoing("web_push", subscription(f"{http_server.url}/p/abc")))
    finally:
        await webpush.aclose()
    assert result.provider_message_id == f"{http_server.url}/m/1"
    [request] = http_server.requests
    assert (request.method, request.path) == ("POST", "/p/abc")
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["ttl"] == "3600"
    claims = verify_vapid(request.headers["authorization"], http_server.url)
    assert claims["sub"] == "mailto:ops@shop.example"
    assert claims["exp"] == int(T0.timestamp()) + 12 * 3600
    plain = http_ece.decrypt(
        request.body, private_key=BROWSER_KEY, auth_secret=AUTH_SECRET, version="aes128gcm"
    )
    payload = orjson.loads(plain)
    assert payload["title"] == "Hi" and payload["body"] == "Hello there"
    assert payload["data"]["send_id"] == "send-1"
    assert b"Hello there" not in request.body


@pytest.mark.parametrize(("status", "reason", "transient"),
                         [(410, SUBSCRIPTION_GONE, False), (404, SUBSCRIPTION_GONE, False),
                          (429, "http_429", True), (400, "http_400", False)])  # fmt: skip
async def test_push_service_answers(
    http_server: FakeServer, status: int, reason: str, transient: bool
) -> None:
    http_server.answer(Reply(status, {}))
    webpush = provider()
    try:
        with pytest.raises(ProviderError) as caught:
            await webpush.send(outgoing("web_push", subscription(f"{http_server.url}/p/abc")))
    finally:
        await webpush.aclose()
    assert (caught.value.reason, caught.value.transient) == (reason, transient)


@pytest.mark.parametrize(
    "address",
    [
        "https://fcm.googleapis.com/fcm/send/abc",  # the endpoint alone: cannot encrypt
        '{"endpoint": "https://push.example/x", "keys": {"auth": "AAAA"}}',
        '{"endpoint": "http://push.example/x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}}',
        '{"endpoint": "https://push.example/x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}}',
    ],
)
async def test_an_address_that_is_no_subscription_is_address_invalid(
    http_server: FakeServer, address: str
) -> None:
    webpush = provider()
    try:
        with pytest.raises(ProviderError) as caught:
            await webpush.send(outgoing("web_push", address))
    finally:
        await webpush.aclose()
    assert (caught.value.reason, caught.value.transient) == (ADDRESS_INVALID, False)
    assert http_server.requests == []


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"vapid_private_key": SecretStr(" ")}, "OMNISTREAM_WEBPUSH_VAPID_PRIVATE_KEY is empty"),
        ({"vapid_private_key": SecretStr("bm90IGEga2V5")}, "not a P-256 private key"),
        ({"subject": "ops@shop.example"}, "OMNISTREAM_WEBPUSH_SUBJECT"),
    ],
)
def test_unusable_settings_refuse_to_start(overrides: dict[str, Any], variable: str) -> None:
    with pytest.raises(ProviderConfigError, match=variable):
        provider(**overrides)


def test_registered_as_webpush(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISTREAM_WEBPUSH_VAPID_PRIVATE_KEY", VAPID_RAW)
    monkeypatch.setenv("OMNISTREAM_WEBPUSH_SUBJECT", "https://shop.example/contact")
    built = build_provider(
        "webpush", read_provider_settings("webpush"), Settings(), ChannelSettings()
    )
    assert isinstance(built, WebPushProvider)
