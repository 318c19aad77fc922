"""The ``viber`` provider: REST ``send_message`` (``POST <base>/pa/send_message``).

Auth is the ``X-Viber-Auth-Token`` header; the address is the Viber user id. Viber answers HTTP
200 with ``{"status": 0, "message_token": N}`` on success and a non-zero ``status`` otherwise:
12 (too many requests) is transient, the rest permanent: 5 (receiver not registered) is the
shared ``address_invalid``, 6 (receiver not subscribed: never subscribed or unsubscribed from
the bot) ``recipient_blocked``, others ``viber_<code>``.
The send id goes in ``tracking_data``.

Callbacks: Viber POSTs every event of a bot to the one webhook URL set with ``set_webhook``
(``/webhooks/viber`` on the public listener), JSON with ``event``, ``timestamp`` (ms) and, per
event, ``message_token``, ``user_id`` (``desc`` for ``failed``), signed in
``X-Viber-Content-Signature``: hex HMAC-SHA256 of the raw body keyed with the bot's auth token,
compared with ``hmac.compare_digest`` (401 otherwise). ``delivered`` -> ``delivered``, ``seen``
-> ``opened``, ``failed`` -> ``failed`` (``message_delivery_failed``), each naming only the
message token, resolved through the message index (``channels/message_tokens.py``: the wiring
wraps this provider, ``receipts_by_message_id``); ``unsubscribed`` names only the user, and is
resolved to the customer of the latest send to that user id (the user id *is* the address we
sent to). ``subscribed``, ``conversation_started``, ``webhook`` (set_webhook's check) and the
rest are answered 200 with nothing produced. The signature has no timestamp of its own, but the
body's ``timestamp`` is signed: callbacks older than ``MAX_CALLBACK_AGE_S`` are ignored
(counted as ``stale``), so a captured request cannot outlive the replay cache (24 h).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.observability.metrics import M
from omnistream.ports import (
    Outgoing,
    ProviderError,
    ProviderResult,
    Receipt,
    ReceiptRejected,
    ReceiptStatus,
)
from omnistream.providers.base import (
    ADDRESS_INVALID,
    RECIPIENT_BLOCKED,
    HttpProvider,
    classify_status,
    hmac_sha256_hex,
    json_or_empty,
)

__all__ = [
    "MAX_CALLBACK_AGE_S",
    "SETTINGS",
    "SIGNATURE_HEADER",
    "ViberProvider",
    "ViberSettings",
    "from_settings",
]

SIGNATURE_HEADER: Final = "X-Viber-Content-Signature"
MAX_CALLBACK_AGE_S: Final = 12 * 3600
"""Older callbacks are ignored: half the replay cache's 24 h, so no replay outlives it."""
_MESSAGE_EVENTS: Final[dict[str, ReceiptStatus]] = {
    "delivered": "delivered",
    "seen": "opened",
    "failed": "failed",
}

_TRANSIENT: Final = frozenset({12})
_KNOWN: Final = frozenset(range(1, 14))
_SHARED: Final = {5: ADDRESS_INVALID, 6: RECIPIENT_BLOCKED}


class ViberSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_VIBER_", env_file=".env", extra="ignore"
    )

    base_url: str = "https://chatapi.viber.com"
    auth_token: SecretStr = SecretStr("")
    sender_name: str = "omnistream"


class ViberProvider(HttpProvider):
    name = "viber"
    receipts_by_message_id = True
    """Callbacks name only the message token: the wiring indexes what this provider sends."""

    def __init__(
        self, base_url: str, auth_token: SecretStr, sender_name: str, timeout_s: float = 10.0
    ) -> None:
        HttpProvider.__init__(self, timeout_s)
        self._url = f"{base_url.rstrip('/')}/pa/send_message"
        self._token = auth_token
        self._sender = sender_name

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        payload = {
            "receiver": outgoing.address,
            "min_api_version": 1,
            "sender": {"name": self._sender},
            "tracking_data": outgoing.send_id,
            "type": "text",
            "text": outgoing.message.body,
        }
        headers = {"X-Viber-Auth-Token": self._token.get_secret_value()}
        status, response_headers, body = await self._request(
            "POST", self._url, headers=headers, json=payload
        )
        error = classify_status(status, response_headers)
        if error is not None:
            raise error
        data = json_or_empty(body)
        code = data.get("status")
        if code == 0:
            token = data.get("message_token")
            return ProviderResult(str(token) if token is not None else None)
        if not isinstance(code, int):
            raise ProviderError("bad_response", transient=False)
        reason = _SHARED.get(code) or (f"viber_{code}" if code in _KNOWN else "viber_error")
        raise ProviderError(reason, transient=code in _TRANSIENT)

    def parse_receipt(
        self, headers: Mapping[str, str], body: bytes, url: str, now: datetime
    ) -> list[Receipt]:
        self._verify(headers.get(SIGNATURE_HEADER), body)
        data = json_or_empty(body)
        event, stamp = data.get("event"), data.get("timestamp")
        if not isinstance(event, str) or not isinstance(stamp, int) or isinstance(stamp, bool):
            raise ReceiptRejected(400, "expected event and timestamp (ms)")
        occurred = datetime.fromtimestamp(stamp / 1000, UTC)
        if now - occurred > timedelta(seconds=MAX_CALLBACK_AGE_S):
            M.receipts_unmatched.labels(self.name, "stale").inc()
            return []
        if event in _MESSAGE_EVENTS:
            return [_message_receipt(event, occurred, data)]
        if event == "unsubscribed":
            user = data.get("user_id")
            if not isinstance(user, str) or not user:
                raise ReceiptRejected(400, "unsubscribed without user_id")
            replay = f"unsubscribed:{user}:{stamp}"
            return [Receipt("unsubscribed", replay, occurred_at=occurred, recipient=user)]
        return []  # subscribed, conversation_started, webhook, message...: not an outcome

    def _verify(self, given: str | None, body: bytes) -> None:
        token = self._token.get_secret_value()
        if not token.strip():  # an empty key is one everybody has: never verify with it
            raise ReceiptRejected(401, "no signing secret configured")
        if not given:
            raise ReceiptRejected(401, "missing signature")
        if not hmac.compare_digest(hmac_sha256_hex(token, body), given.strip().lower()):
            raise ReceiptRejected(401, "bad signature")


def _message_receipt(event: str, occurred: datetime, data: dict[str, Any]) -> Receipt:
    """A delivered / seen / failed callback: it names the message by Viber's token only."""
    token = data.get("message_token")
    if not isinstance(token, int | str) or isinstance(token, bool) or token == "":
        raise ReceiptRejected(400, f"{event} without message_token")
    desc = data.get("desc")
    properties = {"error": desc[:200]} if isinstance(desc, str) and desc else {}
    return Receipt(
        status=_MESSAGE_EVENTS[event],
        replay_id=f"{token}:{event}",
        provider_message_id=str(token),
        occurred_at=occurred,
        properties=properties,
    )


SETTINGS = ViberSettings
"""What ``from_settings`` is given as ``own``: read once at start, by ``omnistream worker``."""


def from_settings(
    own: ViberSettings, settings: Settings, channel_settings: ChannelSettings
) -> ViberProvider:
    return ViberProvider(
        own.base_url, own.auth_token, own.sender_name, channel_settings.provider_timeout_s
    )
