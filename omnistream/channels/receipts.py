"""Delivery receipts: provider callbacks -> events on ``omni.customer-events``.

The runtime mounts ``ReceiptHandler.handle_webhook`` (built in ``runtime/wiring.py``) at
``/webhooks/{provider}``. Each request is, in order: size-checked (413), matched to a configured
provider (404), verified by that provider's ``parse_receipt`` (signature with
``hmac.compare_digest``, signed timestamp within 5 minutes where the provider signs one: 401;
malformed: 400), and checked against the replay cache (``SET NX`` with expiry, per provider
event): a request whose every receipt was seen before is refused with 409, so a captured request
cannot be replayed into duplicate events.

Events: ``message_delivered``, ``message_opened``, ``message_clicked``, ``message_bounced``,
``message_unsubscribed`` and ``message_delivery_failed``, with ``send_id``, ``provider``,
``provider_message_id`` and ``status`` properties. Their ids are derived from the provider's
event identity, so the customer agent's dedup also drops repeats the cache let through.

Every receipt of a request is validated before any replay key is claimed, and a receipt's
``occurred_at`` is clamped to the time it arrived (a provider's clock in the future must not
move engagement there).

Providers whose callbacks name only their own message id (Viber) leave ``send_id`` and
``customer_key`` empty; they are resolved through the ``MessageIndex`` written at send time
(``channels/message_tokens.py``): by message id, or for a user-level callback (Viber's
``unsubscribed``) by recipient, the latest send to it. A callback nothing resolves (expired,
or not ours) is answered 200 with nothing produced and counted in
``omnistream_receipts_unmatched_total``: providers retry non-2xx answers, and a retry cannot
make an unknown token known.

Caveat: the replay key is claimed before the runtime has produced the events. If producing
fails, answer 5xx and the provider's retry will be refused as a replay within the cache window;
the window is short for timestamped providers (their retries are re-signed) and this is logged.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Final

from multidict import CIMultiDict
from pydantic import ValidationError

from omnistream.domain.events import Event, key_fields
from omnistream.domain.vocabulary import SYSTEM_SOURCE
from omnistream.observability.metrics import M
from omnistream.ports import (
    DedupStore,
    MessageIndex,
    Provider,
    Receipt,
    ReceiptRejected,
    SentMessage,
    StoreUnavailable,
)
from omnistream.redis_keys import receipt_replay

__all__ = ["MAX_RECEIPT_BYTES", "ReceiptHandler", "ReceiptRejected"]

log = logging.getLogger(__name__)

MAX_RECEIPT_BYTES: Final = 64 * 1024
_EVENT_TYPES: Final = {
    "delivered": "message_delivered",
    "opened": "message_opened",
    "clicked": "message_clicked",
    "bounced": "message_bounced",
    "unsubscribed": "message_unsubscribed",
    "failed": "message_delivery_failed",
}


class ReceiptHandler:
    """Verifies and decodes provider callbacks; one per worker."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        replay: DedupStore,
        *,
        prefix: str = "omni:",
        replay_ttl_s: int = 86400,
        channels: Mapping[str, Sequence[str]] | None = None,
        index: MessageIndex | None = None,
    ) -> None:
        self._providers = dict(providers)
        self._index = index
        """Where callbacks that name only a provider message id (or a recipient) are resolved."""
        self._channels = {name: tuple(chs) for name, chs in (channels or {}).items()}
        """Provider -> channels it serves: a receipt names its channel when that is unambiguous,
        so the profile's per-channel engagement (and the best-channel choice) learns from it."""
        self._replay = replay
        self._prefix = prefix
        self._replay_ttl_ms = replay_ttl_s * 1000

    async def handle_webhook(
        self,
        provider_name: str,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
        url: str = "",
    ) -> list[Event]:
        """The events a callback means, or ``ReceiptRejected(status, reason)``.

        ``url`` is the full URL the provider called (Twilio signs it).
        """
        provider = self._providers.get(provider_name)
        label = provider_name if provider is not None else "unknown"
        try:
            if provider is None:
                raise ReceiptRejected(404, "unknown provider")
            if len(body) > MAX_RECEIPT_BYTES:
                raise ReceiptRejected(413, "body too large")
            parsed = provider.parse_receipt(CIMultiDict(headers), body, url, now)
            receipts = await self._resolved(provider_name, parsed)
            # Every receipt is turned into its event (and so validated) before any replay key
            # is claimed: a request refused for one bad receipt must not burn the keys of the
            # good ones, or the provider's corrected retry would be refused as a replay.
            events = [self._event(provider_name, receipt, now) for receipt in receipts]
            fresh = [
                (receipt, event)
                for receipt, event in zip(receipts, events, strict=True)
                if await self._first_time(provider_name, receipt)
            ]
            if receipts and not fresh:
                raise ReceiptRejected(409, "replayed request")
        except ReceiptRejected as rejected:
            M.receipts_rejected.labels(label, str(rejected.status)).inc()
            raise
        for receipt, _ in fresh:
            M.receipts.labels(provider_name, receipt.status).inc()
        return [event for _, event in fresh]

    async def _resolved(self, provider_name: str, receipts: list[Receipt]) -> list[Receipt]:
        """``receipts`` with their send filled in from the index where they lack it; the ones
        nothing resolves are left out (and counted)."""
        out: list[Receipt] = []
        for receipt in receipts:
            if receipt.send_id is not None and receipt.customer_key is not None:
                out.append(receipt)
                continue
            try:
                sent, reason = await self._lookup(provider_name, receipt)
            except StoreUnavailable:  # the provider retries a 503; the index will be back
                raise ReceiptRejected(503, "message index unavailable") from None
            if sent is None:
                M.receipts_unmatched.labels(provider_name, reason).inc()
                continue
            properties = {"channel": sent.channel, **dict(receipt.properties)}
            out.append(
                replace(
                    receipt,
                    send_id=sent.send_id,
                    customer_key=sent.customer_key,
                    properties=properties,
                )
            )
        return out

    async def _lookup(self, provider_name: str, receipt: Receipt) -> tuple[SentMessage | None, str]:
        """The indexed send of a receipt, or ``None`` and the bounded reason label."""
        if receipt.provider_message_id is not None:
            if self._index is None:
                return None, "no_index"
            found = await self._index.by_message(provider_name, receipt.provider_message_id)
            return found, "unknown_message"
        if receipt.recipient is not None:
            if self._index is None:
                return None, "no_index"
            found = await self._index.by_recipient(provider_name, receipt.recipient)
            return found, "unknown_recipient"
        raise ReceiptRejected(422, "receipt names no send")

    async def _first_time(self, provider_name: str, receipt: Receipt) -> bool:
        digest = hashlib.sha256(receipt.replay_id.encode()).hexdigest()[:32]
        key = receipt_replay(self._prefix, provider_name, digest)
        claim = await self._replay.claim(key, uuid.uuid4().hex, self._replay_ttl_ms)
        return claim.status == "claimed"

    def _event(self, provider_name: str, receipt: Receipt, now: datetime) -> Event:
        if receipt.customer_key is None or receipt.send_id is None:
            raise ReceiptRejected(422, "receipt names no send")
        identity = hashlib.sha256(f"{provider_name}\x1f{receipt.replay_id}".encode()).hexdigest()
        properties = {
            "send_id": receipt.send_id,
            "provider": provider_name,
            "status": receipt.status,
            **dict(receipt.properties),
        }
        if receipt.provider_message_id is not None:
            properties["provider_message_id"] = receipt.provider_message_id
        served = self._channels.get(provider_name, ())
        if "channel" not in properties and len(served) == 1:
            properties["channel"] = served[0]
        try:
            return Event.model_validate(
                {
                    "event_id": f"rcpt.{identity[:40]}",
                    "type": _EVENT_TYPES[receipt.status],
                    "source": SYSTEM_SOURCE,
                    # A signed receipt can still carry a wrong clock: nothing happened after
                    # now, and a time in 9999 would freeze the channel's engagement there.
                    "timestamp": min(receipt.occurred_at or now, now),
                    "properties": properties,
                    **key_fields(receipt.customer_key),
                }
            )
        except ValidationError:
            raise ReceiptRejected(400, "receipt fields are not valid") from None
