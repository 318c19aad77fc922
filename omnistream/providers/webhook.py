"""The ``webhook`` provider: a generic, signed JSON POST to a URL you run (any channel).

Request: ``POST <url>`` with the message as JSON, ``Idempotency-Key: <send_id>`` and
``X-Omnistream-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``. A 2xx answer
may carry ``{"id": "..."}`` (the provider message id).

Receipts: ``POST /webhooks/webhook`` with the same signature header over
``{"events": [{"id", "type", "send_id", "customer_key", "occurred_at"?, "url"?}]}``, where
``type`` is delivered / opened / clicked / bounced / unsubscribed / failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

import orjson
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnistream.channels.settings import ChannelSettings
from omnistream.clock import utcnow
from omnistream.config import Settings
from omnistream.ports import Outgoing, ProviderResult, Receipt, ReceiptRejected, ReceiptStatus
from omnistream.providers.base import (
    HttpProvider,
    classify_status,
    json_or_empty,
    sign_timestamped,
    verify_timestamped,
)
from omnistream.providers.errors import require_secret

__all__ = ["SETTINGS", "SIGNATURE_HEADER", "WebhookProvider", "WebhookSettings", "from_settings"]

SIGNATURE_HEADER: Final = "X-Omnistream-Signature"
_EMPTY_KEY_RISK: Final = (
    "the webhook provider signs its requests and verifies delivery receipts with it, and an "
    "empty key would let anyone forge receipts (unsubscribes, bounces)"
)
_STATUSES: Final[frozenset[str]] = frozenset(
    {"delivered", "opened", "clicked", "bounced", "unsubscribed", "failed"}
)


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_WEBHOOK_", env_file=".env", extra="ignore"
    )

    url: str = "http://127.0.0.1:8080/messages"
    secret: SecretStr = SecretStr("")


class WebhookProvider(HttpProvider):
    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: SecretStr,
        timeout_s: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(timeout_s)
        self._url = url
        self._secret = require_secret(secret, "OMNISTREAM_WEBHOOK_SECRET", _EMPTY_KEY_RISK)
        self._clock = clock

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        message = outgoing.message
        body = orjson.dumps(
            {
                "send_id": outgoing.send_id,
                "customer_key": outgoing.customer_key,
                "channel": outgoing.channel,
                "address": outgoing.address,
                "category": outgoing.category,
                "journey_id": outgoing.journey_id,
                "step_id": outgoing.step_id,
                "message": {"subject": message.subject, "body": message.body, "data": message.data},
            }
        )
        timestamp = int(self._clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": outgoing.send_id,
            SIGNATURE_HEADER: sign_timestamped(self._secret.get_secret_value(), body, timestamp),
        }
        status, response_headers, response = await self._request(
            "POST", self._url, headers=headers, data=body
        )
        error = classify_status(status, response_headers)
        if error is not None:
            raise error
        message_id = json_or_empty(response).get("id")
        return ProviderResult(str(message_id) if message_id is not None else None)

    def parse_receipt(
        self, headers: Mapping[str, str], body: bytes, url: str, now: datetime
    ) -> list[Receipt]:
        verify_timestamped(
            headers.get(SIGNATURE_HEADER), self._secret.get_secret_value(), body, now
        )
        data = json_or_empty(body)
        events = data.get("events")
        if not isinstance(events, list):
            raise ReceiptRejected(400, "expected {'events': [...]}")
        receipts: list[Receipt] = []
        for item in events:
            if not isinstance(item, dict) or item.get("type") not in _STATUSES:
                raise ReceiptRejected(400, "each event needs a known type")
            if not all(isinstance(item.get(f), str) for f in ("id", "send_id", "customer_key")):
                raise ReceiptRejected(400, "each event needs id, send_id and customer_key")
            status: ReceiptStatus = item["type"]
            occurred = item.get("occurred_at")
            receipts.append(
                Receipt(
                    status=status,
                    replay_id=item["id"],
                    send_id=item["send_id"],
                    customer_key=item["customer_key"],
                    occurred_at=_parse_time(occurred),
                    properties={"url": item["url"]} if isinstance(item.get("url"), str) else {},
                )
            )
        return receipts


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ReceiptRejected(400, "occurred_at is not an ISO 8601 time") from None
    return parsed if parsed.tzinfo is not None else None


SETTINGS = WebhookSettings
"""What ``from_settings`` is given as ``own``: read once at start, by ``omnistream worker``."""


def from_settings(
    own: WebhookSettings, settings: Settings, channel_settings: ChannelSettings
) -> WebhookProvider:
    return WebhookProvider(own.url, own.secret, channel_settings.provider_timeout_s)
