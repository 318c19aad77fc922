"""The ``log`` provider: one JSON line per message, for dev and demos. Never contacts anyone.

It is the dev stand-in for delivery. It writes only to its own sink
(``OMNISTREAM_PROVIDER_LOG_PATH``, default ``-``), never through ``logging``; but ``-`` is stdout,
which is the worker's log stream, so by default a line carries no personal data: ids (send,
customer key, journey, step), the channel and category, sizes, and a short SHA-256 of the address
(to tell "same recipient" apart, not to hide it from someone who can guess addresses).
``OMNISTREAM_PROVIDER_LOG_REDACT=false`` makes it a mail catcher instead: the message as it would
have gone out (``to``, ``subject``, ``body``, ``data``), for ``omnistream dev`` and the end-to-end
tests that check what a journey sent.
"""

from __future__ import annotations

import hashlib
import sys
from typing import IO, Any

import orjson
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnistream.channels.settings import ChannelSettings
from omnistream.clock import utcnow
from omnistream.config import Settings
from omnistream.ports import Outgoing, ProviderResult
from omnistream.providers.base import NoReceipts

__all__ = ["SETTINGS", "LogProvider", "LogProviderSettings", "address_digest", "from_settings"]


class LogProviderSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_PROVIDER_LOG_", env_file=".env", extra="ignore"
    )

    redact: bool = True
    """False writes addresses and message content (dev and tests only)."""


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
            line["to_sha256"] = address_digest(outgoing.address)
            line["subject_chars"] = len(message.subject or "")
            line["body_chars"] = len(message.body)
            line["data_keys"] = sorted(message.data)
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


def address_digest(address: str) -> str:
    """12 hex digits of SHA-256: enough to see that two sends went to one address."""
    return hashlib.sha256(address.encode()).hexdigest()[:12]


SETTINGS = LogProviderSettings
"""What ``from_settings`` is given as ``own``: read once at start, by ``omnistream worker``."""


def from_settings(
    own: LogProviderSettings, settings: Settings, channel_settings: ChannelSettings
) -> LogProvider:
    return LogProvider(settings.provider_log_path, redact=own.redact)
