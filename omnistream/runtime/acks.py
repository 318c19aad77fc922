"""State before offsets: a commit waits until every buffered record is acknowledged.

Faust writes a table row's changelog record through its producer buffer (``send_soon``) and,
before it commits offsets, flushes that buffer with ``flush_atmost``, which gives up when no
record left the buffer for 0.1 s, and then flushes aiokafka, which waits only for what the
buffer already handed over. A record still in the buffer, or taken from it but not yet handed
over, is not waited for: the offset of the event that wrote the row can be committed before the
row's changelog record exists. A kill -9 at that moment loses the row's change while the input
is never read again, and state goes backwards (issue 22: a buyer got the cart push).

``UnackedRecords`` remembers every record given to the buffer until the broker acknowledges it;
the transport driver's producer (``runtime/transport.py``) waits for all of them in ``flush``,
which Faust calls before every offset commit. A record that failed makes the flush raise, so the
commit does not happen and the input is processed again (at least once).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["ChangelogNotAcknowledged", "UnackedRecords"]


class ChangelogNotAcknowledged(RuntimeError):
    """A buffered record (a table changelog write) failed: committing offsets would lose it."""


class UnackedRecords:
    """Futures of buffered records whose broker acknowledgement is still pending."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Future[Any]] = set()
        self._failure: BaseException | None = None

    def track(self, future: asyncio.Future[Any]) -> None:
        self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None and self._failure is None:
            self._failure = future.exception()

    def __len__(self) -> int:
        return len(self._pending)

    async def wait(self) -> None:
        """Return once every tracked record is acknowledged; raise if one of them failed."""
        while self._pending:
            await asyncio.wait(set(self._pending))
        failure, self._failure = self._failure, None
        if failure is not None:
            raise ChangelogNotAcknowledged(
                f"a buffered record was not acknowledged: {failure!r}"
            ) from failure
