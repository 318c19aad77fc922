"""Durable waits. The customer row is the source of truth; this is only an index of it.

Each worker keeps a heap of the pending timers of the partitions it actively owns. It is rebuilt
from the table after every rebalance (once recovery is done), so a timer survives crashes and
moves with its partition. A due timer is produced as a ``timer_fired`` input into the customer's
own partition; the engine ignores a firing whose timer is no longer pending, so firing twice
(e.g. after a crash between produce and commit) never sends twice.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from omnistream.clock import utcnow
from omnistream.domain.state import CustomerState
from omnistream.domain.timers import timer_fired_event
from omnistream.observability.metrics import M
from omnistream.runtime.partitions import partition_of

if TYPE_CHECKING:
    from omnistream.runtime.app import Runtime

__all__ = ["TimerIndex", "install", "timer_fired_event"]

log = logging.getLogger(__name__)


@dataclass
class TimerIndex:
    """Pending timers by due time. Cancelled entries are dropped lazily when they surface."""

    _heap: list[tuple[datetime, str, str]] = field(default_factory=list)
    _pending: dict[tuple[str, str], datetime] = field(default_factory=dict)
    _by_customer: dict[str, set[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._pending)

    def schedule(self, customer_key: str, timer_id: str, due: datetime) -> None:
        self._pending[(customer_key, timer_id)] = due
        self._by_customer.setdefault(customer_key, set()).add(timer_id)
        heapq.heappush(self._heap, (due, customer_key, timer_id))

    def cancel(self, customer_key: str, timer_id: str) -> None:
        if self._pending.pop((customer_key, timer_id), None) is not None:
            self._forget(customer_key, timer_id)

    def _forget(self, customer_key: str, timer_id: str) -> None:
        ids = self._by_customer.get(customer_key)
        if ids is not None:
            ids.discard(timer_id)
            if not ids:
                del self._by_customer[customer_key]

    def drop_customer(self, customer_key: str) -> None:
        """Forget every timer of a deleted row (merged away or erased), in O(its timers)."""
        for timer_id in self._by_customer.pop(customer_key, set()):
            self._pending.pop((customer_key, timer_id), None)

    def clear(self) -> None:
        self._heap.clear()
        self._pending.clear()
        self._by_customer.clear()

    def pop_due(self, now: datetime) -> list[tuple[str, str, datetime]]:
        """Remove and return (customer_key, timer_id, due) of every timer due at ``now``."""
        due: list[tuple[str, str, datetime]] = []
        while self._heap and self._heap[0][0] <= now:
            when, key, timer_id = heapq.heappop(self._heap)
            if self._pending.get((key, timer_id)) == when:
                del self._pending[(key, timer_id)]
                self._forget(key, timer_id)
                due.append((key, timer_id, when))
        return due

    def oldest_due(self) -> datetime | None:
        while (
            self._heap
            and self._pending.get((self._heap[0][1], self._heap[0][2])) != (self._heap[0][0])
        ):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def rebuild(self, rows: Iterable[tuple[bytes, bytes]]) -> Counter[str]:
        """Replace the index with the timers found in ``rows`` (key, CustomerState bytes).

        Returns the live journey instances per journey in those rows: every live instance
        holds a timer, so rows without timers hold no instance and are not even parsed.
        """
        self.clear()
        live: Counter[str] = Counter()
        for _key, raw in rows:
            if b'"timers"' not in raw:  # cheap skip: empty timers are not serialised
                continue
            state = CustomerState.from_bytes(raw)
            for timer in state.timers.values():
                self.schedule(state.key, timer.timer_id, timer.due)
            live.update(instance.journey_id for instance in state.instances.values())
        return live


def install(runtime: Runtime) -> None:
    app = runtime.app
    index = runtime.timers
    ready = asyncio.Event()
    partitions = runtime.settings.partitions

    async def rebuild() -> None:
        await app.tables.recovery.completed.wait()
        owned = runtime.owned.owned
        # Streamed, not list()ed: on RocksDB a list copied every row into Python memory (about
        # 600 MiB at 1M customers, never given back to the OS). No await below, so the table
        # cannot change while it is read.
        rows = (
            (key, raw)
            for key, raw in runtime.customers.data.items()
            if raw and partition_of(key, partitions) in owned
        )
        live = index.rebuild(rows)
        M.journey_live_instances.clear()
        for journey_id, count in live.items():
            M.journey_live_instances.labels(journey_id).set(count)
        log.info("timer index rebuilt: %d pending in partitions %s", len(index), sorted(owned))
        ready.set()

    @app.on_partitions_revoked.connect
    async def _revoked(app_: Any, revoked: Any, **_: Any) -> None:
        ready.clear()

    @app.on_rebalance_complete.connect
    async def _rebalanced(app_: Any, **_: Any) -> None:
        app.add_future(rebuild())

    @app.timer(interval=0.2)
    async def _fire_due() -> None:
        if not ready.is_set() or app.rebalancing:
            return
        now = utcnow()
        due_now = index.pop_due(now)
        for n, (key, timer_id, due) in enumerate(due_now):
            event = timer_fired_event(key, timer_id, due)
            try:
                await runtime.topics.customer_events.send(key=key.encode(), value=event.to_json())
            except Exception:  # the producer failed: keep the rest for the next tick
                log.exception("timer firing failed; %d timers kept for retry", len(due_now) - n)
                for left in due_now[n:]:
                    index.schedule(*left)
                return
            M.timer_lag_seconds.observe((now - due).total_seconds())
