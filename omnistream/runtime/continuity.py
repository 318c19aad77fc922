"""Records reach the streams in offset order, with no offset skipped unless it really is absent.

Faust treats any jump in the offsets it reads as a gap to commit past (a compacted topic has
them), and drops any record below the last offset it read. Both are right only if the consumer's
position moves forward one record at a time. Around a rebalance it does not (issue 22; seen in
``make soak`` with the offsets logged): the seek back to the committed offsets runs on the
consumer thread while a fetch is in progress there, the fetch then drains records from the new
position, and Faust throws them away (flow stopped, or the generation changed) without seeking
back again. The position is now past records nobody handled; the next record read is far ahead
of Faust's read offset, Faust registers the distance as a gap, and the next commit passes it:
in one run 92 records of ``events.app[2]``, with their order confirmations, were never handled.
The reverse also happens (records fetched before the seek handed out after it): the records
from the committed offset are then below the read offset and dropped, and handled only after
the next rebalance, out of order (a sign-up applied after the order that followed it).

``OffsetContinuity`` keeps, per partition, the next offset a stream may receive, and judges
each record before Faust sees it:

- ``DELIVER``: the expected offset (or nothing is expected yet);
- ``GAP``: ahead of it for a known reason, delivered after the caller told Faust of the gap
  (Faust's own gap and drop checks are switched off: it sees every record as the next one);
- ``STALE``: below it, already handed out since the seek (Faust would drop it too);
- ``REWIND``: ahead of it with no known reason. The caller seeks the partition back to the
  expected offset and drops the rest of that partition's records of this fetch; they are
  fetched again, in order.

Every seek resets the expectation **on the consumer thread, in the same step as the seek**
(``seeked``), so a record fetched from the new position is never judged by the old one. A jump
is accepted as a real gap when the consumer reported the batches in between as undecodable
(``skipped``; ``runtime/undecodable.py`` dead-letters them), or when the same jump comes back
right after a rewind: offsets a broker really does not have (transaction markers, compaction)
come back identically, a race does not. The lock makes each judgement and each reset atomic
between the two threads.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Hashable, Iterable, Mapping

__all__ = ["OffsetContinuity", "Verdict"]


class Verdict(enum.Enum):
    DELIVER = "deliver"
    GAP = "gap"
    STALE = "stale"
    REWIND = "rewind"


class OffsetContinuity:
    """The next offset each partition's stream may receive; partitions are any hashable key.
    Thread-safe: the consumer thread resets it as it seeks, the app's loop judges records."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[Hashable, int] = {}
        self._skipped: dict[Hashable, list[tuple[int, int]]] = {}
        self._suspect: dict[Hashable, tuple[int, int]] = {}
        self._started: dict[Hashable, int] = {}

    def started(self, tp: Hashable) -> int | None:
        """Where the consumer was last positioned for ``tp`` (after an assignment: the committed
        offset); records from there on are not handled until a stream hands them out."""
        with self._lock:
            return self._started.get(tp)

    def expected(self, tp: Hashable) -> int | None:
        """The offset ``tp``'s next record must have; None: whatever comes first."""
        with self._lock:
            return self._next.get(tp)

    def expectations(self) -> dict[Hashable, int]:
        """Every partition's expected offset (where its consumer position belongs)."""
        with self._lock:
            return dict(self._next)

    def seeked(self, positions: Mapping[Hashable, int | None]) -> None:
        """The consumer was positioned at these offsets (None: not known)."""
        with self._lock:
            for tp, offset in positions.items():
                self._suspect.pop(tp, None)
                if offset is None or offset < 0:
                    self._next.pop(tp, None)
                    self._started.pop(tp, None)
                else:
                    self._next[tp] = offset
                    self._started[tp] = offset

    def held_back(self, lowest: Mapping[Hashable, int]) -> dict[Hashable, int]:
        """Records from these offsets on were handed out but thrown away before a stream took
        them (Faust clears its stream queues when it resumes the flow): expect them again.
        Returns where each partition must be read from now."""
        with self._lock:
            for tp, offset in lowest.items():
                current = self._next.get(tp)
                self._next[tp] = offset if current is None else min(current, offset)
                self._suspect.pop(tp, None)
            return {tp: self._next[tp] for tp in lowest}

    def forget(self, tps: Iterable[Hashable]) -> None:
        """``tps`` were revoked: whoever owns them next starts from their committed offsets."""
        with self._lock:
            for tp in tps:
                self._next.pop(tp, None)
                self._started.pop(tp, None)
                self._suspect.pop(tp, None)
                self._skipped.pop(tp, None)

    def skipped(self, tp: Hashable, first: int, last: int) -> None:
        """The consumer skipped ``first..last`` of ``tp`` on purpose (an undecodable batch)."""
        with self._lock:
            self._skipped.setdefault(tp, []).append((first, last))

    def check(self, tp: Hashable, offset: int) -> tuple[Verdict, int | None]:
        """Judge the record at ``offset`` of ``tp``; the offset that was expected comes along
        (for a ``GAP``, the gap is ``expected .. offset - 1``; for a ``REWIND``, the place to
        fetch again from). A delivered record moves the expectation past it."""
        with self._lock:
            expected = self._next.get(tp)
            if expected is None or offset == expected:
                return self._deliver(tp, offset, Verdict.DELIVER), expected
            if offset < expected:
                return Verdict.STALE, expected
            if self._covered(tp, expected, offset) or self._suspect.get(tp) == (expected, offset):
                return self._deliver(tp, offset, Verdict.GAP), expected
            self._suspect[tp] = (expected, offset)
            return Verdict.REWIND, expected

    def _deliver(self, tp: Hashable, offset: int, verdict: Verdict) -> Verdict:
        self._next[tp] = offset + 1
        self._suspect.pop(tp, None)
        return verdict

    def _covered(self, tp: Hashable, start: int, end: int) -> bool:
        """Whether reported skips cover every offset in ``start..end-1`` (then forget them)."""
        ranges = sorted(self._skipped.get(tp, []))
        position = start
        for first, last in ranges:
            if first <= position <= last:
                position = last + 1
        if position < end:
            return False
        self._skipped[tp] = [(first, last) for first, last in ranges if last >= end]
        return True
