"""The ``telegram`` provider: Bot API ``sendMessage`` (``POST <base>/bot<token>/sendMessage``).

The address is the chat id. Telegram answers ``{"ok": true, "result": {"message_id": N}}`` or
``{"ok": false, "error_code": N, "description": "...", "parameters": {"retry_after": S}}``;
429 carries ``retry_after`` in ``parameters``. 4xx are permanent; the ``description`` of the ones
about the recipient picks a shared reason: "chat not found", "user is deactivated" and "user not
found" are ``address_invalid``, "bot was blocked by the user" and "bot was kicked" are
``recipient_blocked``; other 4xx stay ``http_<status>``.
The Bot API has no idempotency key and no delivery receipts.
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

__all__ = ["SETTINGS", "TelegramProvider", "TelegramSettings", "from_settings"]


_DESCRIPTIONS: Final = (
    ("chat not found", ADDRESS_INVALID),
    ("user is deactivated", ADDRESS_INVALID),
    ("user not found", ADDRESS_INVALID),
    ("bot was blocked by the user", RECIPIENT_BLOCKED),
    ("bot was kicked", RECIPIENT_BLOCKED),
)
"""Bot API descriptions (lower case) that are about the recipient, and their shared reason."""


class TelegramSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_TELEGRAM_", env_file=".env", extra="ignore"
    )

    base_url: str = "https://api.telegram.org"
    bot_token: SecretStr = SecretStr("")


class TelegramProvider(NoReceipts, HttpProvider):
    name = "telegram"

    def __init__(self, base_url: str, bot_token: SecretStr, timeout_s: float = 10.0) -> None:
        HttpProvider.__init__(self, timeout_s)
        self._base_url = base_url.rstrip("/")
        self._token = bot_token

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        message = outgoing.message
        text = f"{message.subject}\n\n{message.body}" if message.subject else message.body
        url = f"{self._base_url}/bot{self._token.get_secret_value()}/sendMessage"
        status, headers, body = await self._request(
            "POST", url, json={"chat_id": outgoing.address, "text": text}
        )
        data = json_or_empty(body)
        error = classify_status(status, headers)
        if error is not None:
            parameters = data.get("parameters")
            if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int):
                error.retry_after = float(parameters["retry_after"])
            if not error.transient:
                error.reason = _recipient_reason(data.get("description")) or error.reason
            raise error
        result = data.get("result")
        if data.get("ok") is not True or not isinstance(result, dict):
            raise ProviderError("bad_response", transient=False)
        return ProviderResult(str(result.get("message_id")))


def _recipient_reason(description: object) -> str | None:
    """The shared reason a permanent error's description means, if it is about the recipient."""
    if not isinstance(description, str):
        return None
    text = description.lower()
    return next((reason for phrase, reason in _DESCRIPTIONS if phrase in text), None)


SETTINGS = TelegramSettings
"""What ``from_settings`` is given as ``own``: read once at start, by ``omnistream worker``."""


def from_settings(
    own: TelegramSettings, settings: Settings, channel_settings: ChannelSettings
) -> TelegramProvider:
    return TelegramProvider(own.base_url, own.bot_token, channel_settings.provider_timeout_s)
