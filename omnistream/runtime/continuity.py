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

``OffsetContinuity`` keeps, per partition, the next offset a stream may receive (reset by every
seek), and judges each record before Faust sees it:

- ``DELIVER``: the expected offset (or nothing is expected yet);
- ``STALE``: below it, already handed out since the seek (Faust would drop it too);
- ``REWIND``: above it, with no known reason. The caller seeks the partition back to the
  expected offset and drops the rest of that partition's records of this fetch; they are
  fetched again, in order.

A jump is accepted as a real gap when the consumer reported the batches in between as
undecodable (``skipped``; ``runtime/undecodable.py`` dead-letters them), or when the same jump
comes back right after a rewind: offsets a broker really does not have (transaction markers,
compaction) come back identically, a race does not.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Hashable, Iterable, Mapping

__all__ = ["OffsetContinuity", "Verdict"]


class Verdict(enum.Enum):
    DELIVER = "deliver"
    STALE = "stale"
    REWIND = "rewind"


class OffsetContinuity:
    """The next offset each partition's stream may receive; partitions are any hashable key."""

    def __init__(self) -> None:
        self._next: dict[Hashable, int] = {}
        self._skipped: dict[Hashable, list[tuple[int, int]]] = {}
        self._skipped_lock = threading.Lock()  # skips are reported from the consumer thread
        self._suspect: dict[Hashable, tuple[int, int]] = {}
        self.rewinds = 0
        self.accepted_gaps = 0

    def expected(self, tp: Hashable) -> int | None:
        """The offset ``tp``'s next record must have; None: whatever comes first."""
        return self._next.get(tp)

    def seeked(self, positions: Mapping[Hashable, int | None]) -> None:
        """The consumer was positioned at these offsets (None: not known, e.g. the beginning)."""
        for tp, offset in positions.items():
            self._suspect.pop(tp, None)
            if offset is None or offset < 0:
                self._next.pop(tp, None)
            else:
                self._next[tp] = offset

    def forget(self, tps: Iterable[Hashable]) -> None:
        """``tps`` were revoked: whoever owns them next starts from their committed offsets."""
        for tp in tps:
            self._next.pop(tp, None)
            self._suspect.pop(tp, None)
            with self._skipped_lock:
                self._skipped.pop(tp, None)

    def skipped(self, tp: Hashable, first: int, last: int) -> None:
        """The consumer skipped ``first..last`` of ``tp`` on purpose (an undecodable batch).
        Thread-safe: called on the consumer thread while it decodes."""
        with self._skipped_lock:
            self._skipped.setdefault(tp, []).append((first, last))

    def check(self, tp: Hashable, offset: int) -> Verdict:
        """Judge the record at ``offset`` of ``tp`` (and count it as handed out if delivered)."""
        expected = self._next.get(tp)
        if expected is None or offset == expected:
            return self._deliver(tp, offset)
        if offset < expected:
            return Verdict.STALE
        if self._covered(tp, expected, offset) or self._suspect.get(tp) == (expected, offset):
            self.accepted_gaps += 1
            return self._deliver(tp, offset)
        self._suspect[tp] = (expected, offset)
        self.rewinds += 1
        return Verdict.REWIND

    def _deliver(self, tp: Hashable, offset: int) -> Verdict:
        self._next[tp] = offset + 1
        self._suspect.pop(tp, None)
        return Verdict.DELIVER

    def _covered(self, tp: Hashable, start: int, end: int) -> bool:
        """Whether reported skips cover every offset in ``start..end-1`` (then forget them)."""
        with self._skipped_lock:
            ranges = sorted(self._skipped.get(tp, []))
            position = start
            for first, last in ranges:
                if first <= position <= last:
                    position = last + 1
            if position < end:
                return False
            self._skipped[tp] = [(first, last) for first, last in ranges if last >= end]
            return True
