"""The ``log`` provider: one JSON line per message, for dev and demos. Never contacts anyone.

It is the dev stand-in for delivery (a mail catcher, not a log): each line is the message as it
would have gone out (``to``, ``subject``, ``body``, ``data``) so a developer and the end-to-end
tests can see what a journey sent. It writes only to its own sink
(``OMNISTREAM_PROVIDER_LOG_PATH``), never through ``logging``. Where even that sink must not hold
personal data (a shared staging box), ``OMNISTREAM_LOG_PROVIDER_REDACT=true`` writes sizes instead
of the address and content.
"""

from __future__ import annotations

import sys
from typing import IO, Any

import orjson
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnistream.channels.settings import ChannelSettings
from omnistream.clock import utcnow
from omnistream.config import Settings
from omnistream.ports import Outgoing, ProviderResult
from omnistream.providers.base import NoReceipts

__all__ = ["LogProvider", "LogProviderSettings", "from_settings"]


class LogProviderSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_LOG_PROVIDER_", env_file=".env", extra="ignore"
    )

    redact: bool = False


class LogProvider(NoReceipts):
    """Writes to ``path`` (appending), or to stdout when ``path`` is ``"-"``."""

    name = "log"

    def __init__(self, path: str = "-", *, redact: bool = False) -> None:
        self._path = path
        self._redact = redact
        self._file: IO[bytes] | None = None

    def _out(self) -> IO[bytes]:
        if self._path == "-":
            return sys.stdout.buffer
        if self._file is None:
            self._file = open(self._path, "ab")  # kept open until aclose
        return self._file

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        message = outgoing.message
        line: dict[str, Any] = {
            "provider": self.name,
            "send_id": outgoing.send_id,
            "customer_key": outgoing.customer_key,
            "channel": outgoing.channel,
            "category": outgoing.category,
            "journey_id": outgoing.journey_id,
            "step_id": outgoing.step_id,
            "sent_at": utcnow().isoformat(),
        }
        if outgoing.caused_at is not None:
            line["caused_at"] = outgoing.caused_at.isoformat()
        if self._redact:
            line["subject_chars"] = len(message.subject or "")
            line["body_chars"] = len(message.body)
        else:
            line["to"] = outgoing.address
            line["subject"] = message.subject
            line["body"] = message.body
            line["data"] = message.data
        out = self._out()
        out.write(orjson.dumps(line) + b"\n")
        out.flush()
        return ProviderResult(provider_message_id=f"log-{outgoing.send_id}")

    async def aclose(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def from_settings(settings: Settings, channel_settings: ChannelSettings) -> LogProvider:
    return LogProvider(settings.provider_log_path, redact=LogProviderSettings().redact)
