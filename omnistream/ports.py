"""Protocols between the channel logic and what it talks to: stores, rate limiters, providers.

Each store has a Redis implementation (shared by every worker) and an in-memory one (tests, a
single-process dev run); one contract test suite runs against both, so the dispatcher can rely
on the behaviour written here and not on one backend's accidents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from omnistream.domain.commands import Message

__all__ = [
    "CapCounter",
    "CapStore",
    "Claim",
    "DedupStore",
    "MessageIndex",
    "Outgoing",
    "Provider",
    "ProviderError",
    "ProviderResult",
    "RateLimiter",
    "Receipt",
    "ReceiptRejected",
    "ReceiptStatus",
    "SentMessage",
    "StoreUnavailable",
]


# --- dedup and caps -------------------------------------------------------------------------


class StoreUnavailable(ConnectionError):
    """A store cannot be reached right now: wait and retry, the request itself is fine.

    Stores raise it for connection loss and timeouts (the Redis ones translate redis-py's
    errors), so the channel logic waits out outages without knowing which backend it runs on.
    A ``ConnectionError``, so anything that retries OS-level outages retries it too.
    """


@dataclass(frozen=True)
class CapCounter:
    """One frequency-cap window: at most ``limit`` members in the last ``window_ms``.

    ``key`` names the counter (customer + scope + window); ``reason`` is the bounded label reported
    when this counter is the one that is full (``cap_channel``, ``cap_global``, ``cap_journey``).
    """

    key: str
    limit: int
    window_ms: int
    reason: str


@dataclass(frozen=True)
class Claim:
    """The answer of a claim.

    - ``claimed``: this caller owns the send now (the in-flight marker holds ``token``).
    - ``in_flight``: someone else holds it (``record`` is their marker).
    - ``done``: it was finished before; ``record`` is what the finisher stored.
    - ``capped``: not claimed, ``counter`` (index into the counters asked about) is full.
    - ``taken_over``: this caller owns the send now, after replacing a dead owner's marker.
    """

    status: Literal["claimed", "in_flight", "done", "capped", "taken_over"]
    record: bytes | None = None
    counter: int | None = None


class DedupStore(Protocol):
    """Claim a send before calling a provider, remember it once done."""

    async def claim(self, key: str, token: str, ttl_ms: int) -> Claim:
        """Claim ``key`` for ``token`` for ``ttl_ms`` unless someone holds or finished it.

        Claiming again with the same token (a retried request whose first reply was lost) answers
        ``in_flight`` with ``record == token``: the caller recognises its own marker.
        """
        ...

    async def complete(self, key: str, record: bytes, ttl_ms: int) -> None:
        """Mark ``key`` done, keeping ``record`` (the answer to a redelivery) for ``ttl_ms``."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Drop the in-flight marker if it is still ``token``'s, so the send can be tried again."""
        ...

    async def take_over(self, key: str, held: bytes, token: str, ttl_ms: int) -> bool:
        """Replace the in-flight marker ``held`` (a dead owner's) with ``token``'s, atomically, only
        if ``held`` is still what ``key`` holds; ``True`` when this caller owns the send now."""
        ...

    async def lease(self, key: str, ttl_ms: int) -> None:
        """Say that the owner named by ``key`` is alive for the next ``ttl_ms`` (a heartbeat)."""
        ...

    async def leased(self, key: str) -> bool:
        """Whether the owner named by ``key`` renewed its lease recently enough."""
        ...


class CapStore(Protocol):
    """Dedup claim and every frequency-cap window, checked and counted in one atomic step."""

    async def claim_within_caps(
        self,
        key: str,
        token: str,
        ttl_ms: int,
        member: str,
        counters: Sequence[CapCounter],
        now_ms: int,
    ) -> Claim:
        """Like ``DedupStore.claim``, but only when every counter has room; then count ``member``
        in each of them. Nothing is written when the key is held or any counter is full. A member
        already counted in a window does not count twice (a retried claim is harmless).
        """
        ...

    async def refund(self, member: str, counters: Sequence[CapCounter]) -> None:
        """Take ``member`` out of the counters again (the send was not delivered after all)."""
        ...


class RateLimiter(Protocol):
    """A token bucket per provider, shared by every worker."""

    async def acquire(self, key: str, rate: float, burst: int, now_ms: int) -> float:
        """Take one token; return 0.0, or the seconds to wait before asking again."""
        ...


# --- providers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """Everything a provider needs for one message. ``send_id`` is the idempotency key."""

    send_id: str
    customer_key: str
    channel: str
    address: str
    message: Message
    category: str
    journey_id: str
    step_id: str
    caused_at: datetime | None = None
    """When the event that caused this send happened (the log provider reports latency)."""


@dataclass(frozen=True)
class ProviderResult:
    """A provider's acknowledgement. ``properties`` are added to the ``message_sent`` event."""

    provider_message_id: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    """A failed provider call. ``transient`` ones are retried; permanent ones move to fallback.

    ``reason`` is a short, bounded label (metric label and outcome reason), never provider text
    that could echo an address back.
    """

    def __init__(self, reason: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after = retry_after


ReceiptStatus = Literal["delivered", "opened", "clicked", "bounced", "unsubscribed", "failed"]


@dataclass(frozen=True)
class Receipt:
    """One delivery callback, after the signature was verified.

    Providers that echo our metadata back fill ``send_id``/``customer_key``; the others give only
    ``provider_message_id`` and the receipts module looks the send up.
    """

    status: ReceiptStatus
    replay_id: str
    provider_message_id: str | None = None
    occurred_at: datetime | None = None
    send_id: str | None = None
    customer_key: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    recipient: str | None = None
    """The provider's address of the recipient, for a user-level callback that names no message
    (Viber's ``unsubscribed``): the receipts module looks up the latest send to it."""


@dataclass(frozen=True)
class SentMessage:
    """What a provider message id (or recipient) was sent for: enough to key a receipt."""

    send_id: str
    customer_key: str
    channel: str


class MessageIndex(Protocol):
    """Provider message id -> the send it carried, for callbacks that echo nothing of ours.

    Written after a provider accepted a message, read when its callback arrives. Both maps are
    "latest wins" with an expiry; a missing entry is ``None`` (expired or never sent by us).
    """

    async def remember(
        self, provider: str, message_id: str, recipient: str, sent: SentMessage, ttl_ms: int
    ) -> None:
        """Index ``sent`` under its message id and under its recipient (the latest send)."""
        ...

    async def by_message(self, provider: str, message_id: str) -> SentMessage | None:
        """The send that carried ``message_id``."""
        ...

    async def by_recipient(self, provider: str, recipient: str) -> SentMessage | None:
        """The latest send to ``recipient`` through ``provider``."""
        ...


class ReceiptRejected(Exception):
    """A webhook request that is refused, with the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class Provider(Protocol):
    """One delivery service. One file per provider under ``omnistream.providers``."""

    name: str

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        """Deliver, or raise ``ProviderError``. Must not log the address or the body."""
        ...

    def parse_receipt(
        self, headers: Mapping[str, str], body: bytes, url: str, now: datetime
    ) -> list[Receipt]:
        """Verify a callback's signature and decode it, or raise ``ReceiptRejected``.

        A provider without delivery callbacks raises ``ReceiptRejected(404, ...)``.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
