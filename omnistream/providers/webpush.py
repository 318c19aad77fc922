"""The ``webpush`` provider: Web Push with VAPID (RFC 8030, 8291, 8292), for ``web_push``.

The address is the browser's subscription as ``PushSubscription.toJSON()`` gives it,
``{"endpoint": "https://...", "keys": {"p256dh": ..., "auth": ...}}``: the payload is encrypted
for that browser (``aes128gcm``, RFC 8291), so the endpoint alone is not enough. Encryption and
the VAPID JWT come from the maintained ``pywebpush`` / ``py_vapid`` libraries; the POST goes
through the shared HTTP client (no redirects: the request carries our VAPID signature; capped
response bodies).

The payload is JSON ``{"title", "body", "data": {..., "send_id"}}`` for the service worker.
Answers: 201 with a ``Location`` (the push message id); 404 and 410 mean the subscription is gone
for good (the permanent ``subscription_gone``), other statuses follow ``classify_status``.
An address that is not a usable subscription is the permanent ``address_invalid``. Push
services have no delivery callbacks.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import orjson
from py_vapid import Vapid, VapidException
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from pywebpush import WebPusher, WebPushException

from omnistream.channels.settings import ChannelSettings
from omnistream.clock import utcnow
from omnistream.config import Settings
from omnistream.ports import Outgoing, ProviderError, ProviderResult
from omnistream.providers.base import ADDRESS_INVALID, HttpProvider, NoReceipts, classify_status
from omnistream.providers.errors import ProviderConfigError, require_secret

__all__ = ["SETTINGS", "SUBSCRIPTION_GONE", "WebPushProvider", "WebPushSettings", "from_settings"]

SUBSCRIPTION_GONE: Final = "subscription_gone"
"""The push service forgot the subscription (404/410): the browser unsubscribed or expired it."""
_GONE_STATUSES: Final = frozenset({404, 410})
_JWT_LIFETIME: Final = timedelta(hours=12)
"""RFC 8292 allows at most 24 h; a push service may refuse tokens near that limit."""
_KEYS: Final = ("p256dh", "auth")
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})
_EMPTY_KEY_RISK: Final = "Web Push requests are signed with the VAPID key (RFC 8292)"


class WebPushSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_WEBPUSH_", env_file=".env", extra="ignore"
    )

    vapid_private_key: SecretStr = SecretStr("")
    """The application server's P-256 private key: raw 32 bytes or DER, base64url."""
    subject: str = ""
    """Contact for the push service operator: ``mailto:...`` or ``https://...``."""
    ttl_s: int = 86400
    """How long the push service keeps a message for an offline browser."""


class WebPushProvider(NoReceipts, HttpProvider):
    name = "webpush"

    def __init__(
        self,
        own: WebPushSettings,
        timeout_s: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        HttpProvider.__init__(self, timeout_s)
        key = require_secret(
            own.vapid_private_key, "OMNISTREAM_WEBPUSH_VAPID_PRIVATE_KEY", _EMPTY_KEY_RISK
        )
        self._vapid = _load_key(key)
        if not own.subject.startswith(("mailto:", "https://")):
            raise ProviderConfigError(
                "OMNISTREAM_WEBPUSH_SUBJECT must be a mailto: or https:// contact (RFC 8292)"
            )
        self._own = own
        self._clock = clock

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        subscription = _subscription(outgoing.address)
        endpoint = str(subscription["endpoint"])
        body = self._encrypt(subscription, outgoing)
        headers = {
            **self._authorization(endpoint),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self._own.ttl_s),
        }
        status, response_headers, _ = await self._request(
            "POST", endpoint, headers=headers, data=body
        )
        if status in _GONE_STATUSES:
            raise ProviderError(SUBSCRIPTION_GONE, transient=False)
        error = classify_status(status, response_headers)
        if error is not None:
            raise error
        return ProviderResult(response_headers.get("Location"))

    def _encrypt(self, subscription: dict[str, Any], outgoing: Outgoing) -> bytes:
        message = outgoing.message
        payload = orjson.dumps(
            {
                "title": message.subject or "",
                "body": message.body,
                "data": {**message.data, "send_id": outgoing.send_id},
            }
        )
        try:
            encoded = WebPusher(subscription).encode(payload, "aes128gcm")
        except (WebPushException, ValueError, TypeError):
            raise ProviderError(ADDRESS_INVALID, transient=False) from None
        return bytes(encoded["body"])

    def _authorization(self, endpoint: str) -> dict[str, str]:
        """The ``Authorization: vapid t=<JWT>,k=<public key>`` header for this push service."""
        parts = urlsplit(endpoint)
        claims = {
            "sub": self._own.subject,
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int((self._clock() + _JWT_LIFETIME).timestamp()),
        }
        signed: dict[str, str] = self._vapid.sign(claims)
        return {"Authorization": signed["Authorization"]}


def _load_key(key: SecretStr) -> Vapid:
    try:
        return Vapid.from_string(key.get_secret_value().strip())
    except (VapidException, ValueError, binascii.Error):
        raise ProviderConfigError(
            "OMNISTREAM_WEBPUSH_VAPID_PRIVATE_KEY is not a P-256 private key "
            "(raw 32 bytes or DER, base64url)"
        ) from None


def _subscription(address: str) -> dict[str, Any]:
    """The subscription the address holds, or the permanent ``address_invalid``."""
    try:
        data = orjson.loads(address)
    except orjson.JSONDecodeError:
        raise ProviderError(ADDRESS_INVALID, transient=False) from None
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(endpoint, str) or not _push_service_url(endpoint):
        raise ProviderError(ADDRESS_INVALID, transient=False)
    if not isinstance(keys, dict) or not all(isinstance(keys.get(k), str) for k in _KEYS):
        raise ProviderError(ADDRESS_INVALID, transient=False)
    return {"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}


def _push_service_url(endpoint: str) -> bool:
    """HTTPS, as browsers give it; plain HTTP only to loopback (a local test push service)."""
    parts = urlsplit(endpoint)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)


SETTINGS = WebPushSettings
"""What ``from_settings`` is given as ``own``: read once at start, by ``omnistream worker``."""


def from_settings(
    own: WebPushSettings, settings: Settings, channel_settings: ChannelSettings
) -> WebPushProvider:
    return WebPushProvider(own, channel_settings.provider_timeout_s)
