"""Dead-letter records: the rejected bytes, unchanged, with the reason in Kafka headers.

Keeping the value byte-for-byte lets an operator fix the producer and replay the record; the
headers say why it was rejected and where it came from.

``guarded`` runs one record's processing and dead-letters the record if it raises. Faust acks
the record an agent was processing when the agent raises (the ``finally`` around its stream's
``yield``), so an unguarded bug or race loses the record silently and kills the agent: guarded,
the record is kept in the DLQ with the error, and the agent goes on with the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from omnistream.clock import utcnow
from omnistream.observability.metrics import M

if TYPE_CHECKING:
    from omnistream.runtime.app import Runtime

__all__ = ["INTERNAL_ERROR", "DeadLetter", "dead_letter", "guarded"]

INTERNAL_ERROR = "internal_error"
"""DLQ reason for a record whose processing raised: a bug or an outage, never bad input."""

log = logging.getLogger(__name__)

_MAX_DETAIL = 1000


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    rejected_at: datetime

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("omnistream.reason", self.reason.encode()),
            ("omnistream.detail", self.detail[:_MAX_DETAIL].encode()),
            ("omnistream.topic", self.topic.encode()),
            ("omnistream.partition", str(self.partition).encode()),
            ("omnistream.offset", str(self.offset).encode()),
            ("omnistream.rejected_at", self.rejected_at.isoformat().encode()),
        ]

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | dict[str, bytes]) -> DeadLetter:
        items = dict(headers.items() if isinstance(headers, dict) else headers)

        def get(name: str) -> str:
            return items[f"omnistream.{name}"].decode()

        return cls(
            reason=get("reason"),
            detail=get("detail"),
            topic=get("topic"),
            partition=int(get("partition")),
            offset=int(get("offset")),
            rejected_at=datetime.fromisoformat(get("rejected_at")),
        )


async def dead_letter(runtime: Runtime, message: Any, reason: str, detail: str) -> None:
    """Send one record's raw value to the DLQ with the reason; count it."""
    letter = DeadLetter(
        reason=reason,
        detail=detail,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        rejected_at=utcnow(),
    )
    M.events_rejected.labels(message.topic, reason).inc()
    log.warning(
        "rejected record %s[%s]@%s: %s",
        message.topic,
        message.partition,
        message.offset,
        reason,
    )
    await runtime.topics.dlq.send(
        key=message.key, value=message.value or b"", headers=letter.headers()
    )


async def guarded(
    runtime: Runtime, stage: str, message: Any, handle: Callable[[Any], Awaitable[None]]
) -> None:
    """``await handle(message)``; if it raises, log it and dead-letter the record instead."""
    try:
        await handle(message)
    except Exception as exc:  # not CancelledError: stopping the worker must still stop it
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        log.exception("%s failed on %s", stage, where)
        await dead_letter(runtime, message, INTERNAL_ERROR, f"{stage}: {type(exc).__name__}: {exc}")
