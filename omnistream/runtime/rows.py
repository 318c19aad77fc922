"""Row writes that wait for their outputs without stopping the customer agent.

Outputs before state (``runtime/delivery.py``): a customer row is written only after the broker
acknowledged the records its input produced, and the input is acknowledged to Faust (so its
offset can be committed) only after the row was written. Waiting for the broker inline stalled
the agent for a produce round trip on every input with outputs: 28% of the wall time in the
pipeline benchmark (docs/performance.md).

So the agent hands the new row to ``RowWriter.put`` and goes on with the next record. One writer
task takes the rows in input order; for each, it waits for the outputs, writes the row (in the
input's Faust context, so the changelog record goes to that input's partition), then acks the
input. Until then ``RowWriter.latest`` serves the newest row of a key, so a customer's next input
sees its previous one. On a rebalance Faust waits for every consumed record to be acked
(``stream_wait_empty``), which drains the writer before partitions move. A crash loses only
unacked inputs, which are redelivered: the same guarantee as the inline wait.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from omnistream.domain.state import CustomerState
from omnistream.runtime.delivery import Pending, delivered
from omnistream.runtime.dlq import INTERNAL_ERROR, dead_letter

if TYPE_CHECKING:
    from omnistream.runtime.app import Runtime

__all__ = ["RowWriter"]

log = logging.getLogger(__name__)

MAX_UNWRITTEN: Final = 1000
"""Rows waiting for their outputs before ``put`` makes the agent wait (bounded memory)."""

Ack = Callable[[Any], Awaitable[Any]]


def _future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class _Row:
    key: bytes
    state: CustomerState
    pending: Pending
    event: Any
    """The Faust event of the input: acked once the row is written."""
    context: contextvars.Context
    written: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class RowWriter:
    """Writes customer rows after their outputs, in input order; acks each input after its row."""

    def __init__(self, runtime: Runtime, limit: int = MAX_UNWRITTEN) -> None:
        self.runtime = runtime
        self._queue: asyncio.Queue[_Row] = asyncio.Queue(maxsize=limit)
        self._latest: dict[bytes, _Row] = {}
        self._held: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ack: Ack | None = None

    def start(self, ack: Ack) -> None:
        """Begin writing; ``ack`` is the agent stream's ``ack`` (the stream does not ack)."""
        self._ack = ack
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="row-writer")

    def latest(self, key: bytes) -> CustomerState | None:
        """The newest row of ``key`` that is not written yet, if any."""
        row = self._latest.get(key)
        return row.state if row is not None else None

    async def put(self, key: bytes, state: CustomerState, pending: Pending, event: Any) -> None:
        """Queue ``state`` as ``key``'s row, to be written once ``pending`` is acknowledged."""
        row = _Row(key, state, pending, event, contextvars.copy_context())
        self._latest[key] = row
        self._held = event
        await self._queue.put(row)

    def holds(self, event: Any) -> bool:
        """True (once) if the last ``put`` was for ``event``: the writer acks it, not the agent."""
        held, self._held = self._held, None
        return held is event

    async def settled(self, key: bytes) -> None:
        """Wait until ``key`` has no unwritten row (before code that reads and writes it inline)."""
        row = self._latest.get(key)
        if row is not None:
            await asyncio.shield(row.written)

    async def _run(self) -> None:
        while True:
            row = await self._queue.get()
            try:
                await self._write(row)
            finally:
                if self._latest.get(row.key) is row:
                    del self._latest[row.key]
                if not row.written.done():
                    row.written.set_result(None)
                assert self._ack is not None
                await self._ack(row.event)

    async def _write(self, row: _Row) -> None:
        try:
            await delivered(row.pending)
            value = row.state.to_bytes()
            row.context.run(self.runtime.customers.__setitem__, row.key, value)
        except Exception as exc:  # a failed output: the input goes to the DLQ, not silently away
            log.exception("row of %r not written", row.key)
            detail = f"customer: {type(exc).__name__}: {exc}"
            await dead_letter(self.runtime, row.event.message, INTERNAL_ERROR, detail)
