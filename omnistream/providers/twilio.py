"""The ``twilio`` provider: Programmable Messaging REST API, for ``sms``.

``POST <base>/2010-04-01/Accounts/<AccountSid>/Messages.json``, form-encoded ``To``, ``From``
(or ``MessagingServiceSid``), ``Body`` and ``StatusCallback``, HTTP Basic auth with the account
SID and auth token; the answer (201) is the message resource with its ``sid``. Errors are JSON
with Twilio's numeric ``code``; 429 and 5xx are transient.

Receipts: Twilio POSTs the status callback (form fields ``MessageSid``, ``MessageStatus``) to the
URL we gave, which carries our customer key and send id as query parameters. Twilio signs the
full URL plus the sorted form fields with HMAC-SHA1 of the auth token, base64, in
``X-Twilio-Signature``. The signature has no timestamp, so replays are caught by the replay
cache alone (keyed by message SID and status).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.ports import (
    Outgoing,
    ProviderResult,
    Receipt,
    ReceiptRejected,
    ReceiptStatus,
)
from omnistream.providers.base import HttpProvider, classify_status, json_or_empty
from omnistream.providers.errors import require_secret

__all__ = ["SETTINGS", "TwilioProvider", "TwilioSettings", "from_settings", "twilio_signature"]

_EMPTY_KEY_RISK: Final = (
    "Twilio status callbacks are verified with it, and an empty key would let anyone forge "
    "receipts (bounces, failures)"
)
_STATUS: Final[dict[str, ReceiptStatus]] = {
    "delivered": "delivered",
    "read": "opened",
    "undelivered": "bounced",
    "failed": "failed",
}


class TwilioSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_TWILIO_", env_file=".env", extra="ignore"
    )

    base_url: str = "https://api.twilio.com"
    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    from_number: str = ""
    messaging_service_sid: str = ""
    status_callback_url: str = Field(default="", description="Public URL of /webhooks/twilio.")


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's request signature: base64 HMAC-SHA1 of the URL followed by sorted key+value."""
    payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class TwilioProvider(HttpProvider):
    name = "twilio"

    def __init__(self, own: TwilioSettings, timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s)
        require_secret(own.auth_token, "OMNISTREAM_TWILIO_AUTH_TOKEN", _EMPTY_KEY_RISK)
        self._own = own
        base = own.base_url.rstrip("/")
        self._url = f"{base}/2010-04-01/Accounts/{own.account_sid}/Messages.json"

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        own = self._own
        form = {"To": outgoing.address, "Body": outgoing.message.body}
        if own.messaging_service_sid:
            form["MessagingServiceSid"] = own.messaging_service_sid
        else:
            form["From"] = own.from_number
        if own.status_callback_url:
            query = urlencode({"c": outgoing.customer_key, "s": outgoing.send_id})
            form["StatusCallback"] = f"{own.status_callback_url}?{query}"
        credentials = f"{own.account_sid}:{own.auth_token.get_secret_value()}".encode()
        auth = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
        status, headers, body = await self._request("POST", self._url, data=form, headers=auth)
        error = classify_status(status, headers)
        if error is not None:
            code = json_or_empty(body).get("code")
            if isinstance(code, int) and not error.transient:
                error.reason = f"twilio_{code}"[:32]
            raise error
        sid = json_or_empty(body).get("sid")
        return ProviderResult(str(sid) if sid is not None else None)

    def parse_receipt(
        self, headers: Mapping[str, str], body: bytes, url: str, now: datetime
    ) -> list[Receipt]:
        given = headers.get("X-Twilio-Signature")
        if not given:
            raise ReceiptRejected(401, "missing signature")
        token = self._own.auth_token.get_secret_value()
        if not token.strip():  # an empty key is one everybody has: never verify with it
            raise ReceiptRejected(401, "no signing secret configured")
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        expected = twilio_signature(token, url, params)
        if not hmac.compare_digest(expected, given):
            raise ReceiptRejected(401, "bad signature")
        query = dict(parse_qsl(urlsplit(url).query))
        sid, state = params.get("MessageSid"), params.get("MessageStatus", "")
        if not sid or "c" not in query or "s" not in query:
            raise ReceiptRejected(400, "missing MessageSid or our c/s parameters")
        status = _STATUS.get(state)
        if status is None:  # queued, sending, sent: not an outcome yet
            return []
        return [
            Receipt(
                status=status,
                replay_id=f"{sid}:{state}",
                provider_message_id=sid,
                send_id=query["s"],
                customer_key=query["c"],
            )
        ]


SETTINGS = TwilioSettings
"""What ``from_settings`` is given as ``own``: read once at start, by ``omnistream worker``."""


def from_settings(
    own: TwilioSettings, settings: Settings, channel_settings: ChannelSettings
) -> TwilioProvider:
    return TwilioProvider(own, channel_settings.provider_timeout_s)
