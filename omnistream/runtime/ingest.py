"""Ingest: raw source records in, validated events out to the customer topic, the rest to the DLQ.

Valid records are forwarded byte-for-byte (no re-serialisation on the hot path), keyed by the
event's highest-ranked identifier (``route_key``: the customer id when there is one), so
everything about one customer lands in one partition, in order.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from omnistream.clock import monotonic, utcnow
from omnistream.domain.events import EventError, parse_event
from omnistream.domain.identity import route_key
from omnistream.observability.metrics import M, event_type_label
from omnistream.runtime.dlq import DeadLetter

if TYPE_CHECKING:
    from omnistream.runtime.app import Runtime

__all__ = ["install"]

log = logging.getLogger(__name__)


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


def install(runtime: Runtime) -> None:
    @runtime.app.agent(runtime.topics.sources, name="ingest", concurrency=1)
    async def ingest(stream: Any) -> None:
        async for record in stream.events():
            started = monotonic()
            message = record.message
            try:
                event = parse_event(message.value or b"")
            except EventError as exc:
                await dead_letter(runtime, message, exc.reason, exc.detail)
                continue
            M.events_ingested.labels(event.source, event_type_label(event.type)).inc()
            await runtime.topics.customer_events.send(
                key=route_key(event).encode(), value=message.value
            )
            M.stage_seconds.labels("ingest").observe(monotonic() - started)
