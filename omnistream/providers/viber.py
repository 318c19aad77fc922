"""The ``viber`` provider: REST ``send_message`` (``POST <base>/pa/send_message``).

Auth is the ``X-Viber-Auth-Token`` header; the address is the Viber user id. Viber answers HTTP
200 with ``{"status": 0, "message_token": N}`` on success and a non-zero ``status`` otherwise:
12 (too many requests) is transient, the rest permanent: 5 (receiver not registered) is the
shared ``address_invalid``, 6 (receiver not subscribed: never subscribed or unsubscribed from
the bot) ``recipient_blocked``, others ``viber_<code>``.
The send id goes in ``tracking_data``. Delivery callbacks are not handled yet (they name only the
message token, which would need a token -> send index).
"""

from __future__ import annotations

from typing import Final

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.ports import Outgoing, ProviderError, ProviderResult
from omnistream.providers.base import (
    ADDRESS_INVALID,
    RECIPIENT_BLOCKED,
    HttpProvider,
    NoReceipts,
    classify_status,
    json_or_empty,
)

__all__ = ["ViberProvider", "ViberSettings", "from_settings"]

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


class ViberProvider(NoReceipts, HttpProvider):
    name = "viber"

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
            return ProviderResult(str(data.get("message_token")))
        if not isinstance(code, int):
            raise ProviderError("bad_response", transient=False)
        reason = _SHARED.get(code) or (f"viber_{code}" if code in _KNOWN else "viber_error")
        raise ProviderError(reason, transient=code in _TRANSIENT)


def from_settings(settings: Settings, channel_settings: ChannelSettings) -> ViberProvider:
    own = ViberSettings()
    return ViberProvider(
        own.base_url, own.auth_token, own.sender_name, channel_settings.provider_timeout_s
    )
