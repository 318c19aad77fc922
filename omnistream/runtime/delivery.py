"""Outputs before state: wait for the broker to take a handler's records before its row write.

A row write is the record that an input was handled: the event id goes into the row, so a
redelivered event is dropped as a duplicate. If the row reached the changelog and a send command
did not (a kill -9 between the two, or two partitions led by different brokers), the
redelivered event would be dropped and the send lost. So handlers produce their records, wait
here until the broker acknowledged them, and only then write the row. A crash before the row
write repeats the records when the input is redelivered; their ids are deterministic, so the
repeat is harmless (Redis send dedup, idempotent identity messages).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

__all__ = ["Pending", "delivered"]

Pending = list[Awaitable[Any]]
"""Delivery futures of produced records (what Faust's ``Topic.send`` returns)."""


async def delivered(pending: Pending) -> None:
    """Return once every record in ``pending`` was acknowledged by the broker."""
    if pending:
        await asyncio.gather(*pending)
