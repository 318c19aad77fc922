"""The index of pending timers of the partitions a worker owns: a heap by due time.

Apart from ``runtime/timers.py`` (which installs the Faust timer loop around it) so the in-process
harness uses the very same index without importing the worker's runtime.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from omnistream.domain.state import CustomerState

__all__ = ["TimerIndex"]


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
