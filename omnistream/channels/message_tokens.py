"""Message tokens: receipts for providers whose callbacks name only their own message id.

Viber's callbacks carry ``message_token`` (and the user id) but none of our metadata, and one
bot has one webhook URL, so nothing of ours can travel in them. ``IndexingProvider`` wraps such a
provider: after it accepted a message, the token is indexed (``MessageIndex`` port: Redis in the
worker, memory in tests) as ``token -> (send id, customer key, channel)``, and the recipient as
``recipient -> latest send``; ``ReceiptHandler`` resolves callbacks through the same index.

The index is written after the provider answered, so a failure to write it must not fail the
send (the dispatcher would fall back and the customer would get the message twice): it is
logged and counted (``omnistream_message_index_write_failures_total``) and that message's
callbacks are then unmatched (200, counted, nothing produced).

Entries expire after ``MESSAGE_INDEX_TTL_S`` (7 days: Viber reports ``seen`` when the user opens
the chat, which can be days later). Keys hash the token and the recipient, so no address sits
in a key name; values hold the customer key and the send id, and are not found by erasure's
per-customer scan: they are gone at the latest 7 days after the last send.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from omnistream.observability.metrics import M
from omnistream.ports import (
    MessageIndex,
    Outgoing,
    Provider,
    ProviderResult,
    Receipt,
    SentMessage,
)

__all__ = ["MESSAGE_INDEX_TTL_S", "IndexingProvider", "index_digest"]

log = logging.getLogger(__name__)

MESSAGE_INDEX_TTL_S: Final = 7 * 86400


def index_digest(value: str) -> str:
    """The key part for a token or a recipient: a hash, so no address is a key name."""
    return hashlib.sha256(value.encode()).hexdigest()[:40]


class IndexingProvider:
    """A provider whose accepted messages are indexed by their provider message id."""

    def __init__(
        self, inner: Provider, index: MessageIndex, ttl_s: int = MESSAGE_INDEX_TTL_S
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._index = index
        self._ttl_ms = ttl_s * 1000

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        result = await self.inner.send(outgoing)
        if result.provider_message_id:
            await self._remember(outgoing, result.provider_message_id)
        return result

    async def _remember(self, outgoing: Outgoing, message_id: str) -> None:
        sent = SentMessage(outgoing.send_id, outgoing.customer_key, outgoing.channel)
        try:
            await self._index.remember(self.name, message_id, outgoing.address, sent, self._ttl_ms)
        except Exception:  # the message is out: never turn this into a failed send
            log.exception("send %s: indexing its %s message id failed", sent.send_id, self.name)
            M.message_index_write_failures.labels(self.name).inc()

    def parse_receipt(
        self, headers: Mapping[str, str], body: bytes, url: str, now: datetime
    ) -> list[Receipt]:
        return self.inner.parse_receipt(headers, body, url, now)

    async def aclose(self) -> None:
        await self.inner.aclose()
