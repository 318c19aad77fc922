"""Claim owners: a worker's lease, and telling a dead worker's claim from a live one's.

A claim's in-flight marker names its owner (``owner/uuid``). Every worker keeps a lease in Redis
(``<prefix>owner:<owner>``, ``owner_lease_s``), renewed every third of it by a timer and before
its claims. A worker killed during a provider call stops renewing; once its lease lapses, a
redelivery of the same send replaces its marker (compare-and-set) and sends at once, instead of
holding the channel agent, and any rebalance waiting on it, for ``in_flight_ttl_s`` (issue 22:
about two minutes of stalled sends after one kill).

A live worker that cannot reach Redis for longer than its lease could be taken for dead while
its provider call goes on: that send may then go out twice, the at-least-once case the send id
(the providers' idempotency key) already covers.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol, TypeVar

from omnistream.ports import DedupStore
from omnistream.redis_keys import owner_lease

__all__ = ["OwnerLease", "worker_owner_id"]

T = TypeVar("T")


class RedisCall(Protocol):
    """The dispatcher's Redis round trip wrapper (waits out an outage with backoff)."""

    def __call__(self, op: str, call: Callable[[], Awaitable[T]], /) -> Awaitable[T]: ...


def worker_owner_id() -> str:
    """A name for this worker process: unique per start, so a restarted worker never mistakes
    its dead predecessor's claims for its own."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class OwnerLease:
    """One worker's lease, and the check of another owner's. ``owner=None`` makes anonymous
    claims that are only ever waited for (tests, a single process)."""

    def __init__(
        self,
        owner: str | None,
        dedup: DedupStore,
        *,
        prefix: str,
        lease_s: float,
        clock: Callable[[], datetime],
        redis: RedisCall,
    ) -> None:
        self.owner = owner
        self._dedup = dedup
        self._prefix = prefix
        self._lease_ms = int(lease_s * 1000)
        self.renewal_s = lease_s / 3
        self._clock = clock
        self._redis = redis
        self._renewed: datetime | None = None

    def token(self) -> str:
        """A fresh claim token that names this owner."""
        return f"{self.owner}/{uuid.uuid4().hex}" if self.owner else uuid.uuid4().hex

    def _key(self, owner: str) -> str:
        return owner_lease(self._prefix, owner)

    async def renew(self) -> None:
        """Say this worker is alive for the lease's length."""
        if self.owner is None:
            return
        key, ttl_ms = self._key(self.owner), self._lease_ms
        await self._redis("owner_lease", lambda: self._dedup.lease(key, ttl_ms))
        self._renewed = self._clock()

    async def keep(self) -> None:
        """Renew if a third of the lease went by: the lease exists before any claim of ours."""
        if self.owner is None:
            return
        renewed = self._renewed
        if renewed is None or (self._clock() - renewed).total_seconds() > self.renewal_s:
            await self.renew()

    async def is_dead(self, held: bytes) -> bool:
        """Whether the marker ``held`` names an owner whose lease lapsed. An anonymous marker
        (no ``owner/``) cannot be judged and is waited for until it lapses."""
        owner, slash, _ = held.decode(errors="replace").partition("/")
        if not slash or not owner:
            return False
        key = self._key(owner)
        return not await self._redis("owner_leased", lambda: self._dedup.leased(key))
