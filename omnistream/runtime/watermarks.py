"""How far each customer partition's producer inputs were read: the gate of the timer loop.

Waits run from when their input happened (``journey/runner.py``: ``Tx.started``), so after a
failover or behind a backlog a wait can be due the moment its input is read. Firing it then
would be wrong when the customer's next events are still unread: a cart and the order placed
right after it, read 30 s late, would get the cart push before the order is seen; an order on a
source topic that lags another (a CRM export behind the site events) likewise. So a timer of
customer partition ``p`` fires only once every source partition ``p`` of this worker was read
up to its due time, as Kafka Streams fires stream-time punctuations:

- a source partition whose records were all handled (the next offset to handle has reached the
  broker's high watermark from the last fetch, or, with transaction markers or a skipped batch
  at the end, every record the client handed out was handled and it has nothing left) is read
  up to now;
- otherwise it is read up to the latest event time handled on it since it was assigned
  (nothing handled yet: not at all).

What it does not see: an event keyed by another identifier of the customer, on a source
partition of another number (an anonymous visitor's order before the merge), which reaches
partition ``p`` forwarded through ``omni.customer-events``. Keyed sources (the customer id as
the record key, docs/operations.md) put every event of a customer in its own partition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

__all__ = ["InputWatermarks", "ReadPosition", "Reader"]


@dataclass(frozen=True)
class ReadPosition:
    """Where the consumer is in one source partition (offsets are "next" offsets; None: not
    known yet)."""

    start: int | None
    """Where reading started after the assignment (the committed offset)."""
    delivered: int | None
    """After the last record handed to the customer agent's stream."""
    fetched: int | None
    """After the last record the Kafka client handed out, transaction markers and skipped
    batches included: it reaches ``end`` when nothing is left to read."""
    end: int | None
    """The broker's high watermark as of the last fetch."""


Reader = Callable[[str, int], ReadPosition]


class InputWatermarks:
    """Per source partition: the next offset to handle and the latest event time handled."""

    def __init__(self, sources: Iterable[str], reader: Reader) -> None:
        self._sources = frozenset(sources)
        self._reader = reader
        self._next: dict[tuple[str, int], int] = {}
        self._latest: dict[tuple[str, int], datetime] = {}

    def reset(self) -> None:
        """A new assignment: what was handled before it says nothing about where reading
        resumes (another worker may have moved the offsets since)."""
        self._next.clear()
        self._latest.clear()

    def handled(self, topic: str, partition: int, offset: int, at: datetime | None) -> None:
        """The customer agent handled (forwarded, handled or dead-lettered) this source record;
        ``at`` is its event time when it parsed."""
        if topic not in self._sources:
            return
        tp = (topic, partition)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)
        if at is not None and (tp not in self._latest or at > self._latest[tp]):
            self._latest[tp] = at

    def read_up_to(self, partition: int, now: datetime) -> datetime | None:
        """The time every source partition ``partition`` was read up to (``None``: one of them
        was not read at all yet)."""
        earliest = now
        for topic in self._sources:
            tp = (topic, partition)
            if self._caught_up(tp):
                continue
            latest = self._latest.get(tp)
            if latest is None:
                return None
            earliest = min(earliest, latest)
        return earliest

    def _caught_up(self, tp: tuple[str, int]) -> bool:
        """Every record up to the broker's end was handled: directly, or (when transaction
        markers or a skipped batch sit at the end) every record handed out was handled and the
        client has nothing left to hand out."""
        read = self._reader(*tp)
        handled = self._next.get(tp, read.start)
        if read.end is None or handled is None:
            return False
        if handled >= read.end:
            return True
        nothing_pending = read.delivered is None or handled >= read.delivered
        return read.fetched is not None and read.fetched >= read.end and nothing_pending
