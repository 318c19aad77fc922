"""Ingest: raw source records in, validated events out to the customer topic, the rest to the DLQ.

Valid records are forwarded byte-for-byte (no re-serialisation on the hot path), keyed by the
event's highest-ranked identifier (``route_key``: the customer id when there is one), so
everything about one customer lands in one partition, in order.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from omnistream.clock import monotonic
from omnistream.domain.events import EventError, parse_event
from omnistream.domain.identity import route_key
from omnistream.observability.metrics import M, event_type_label
from omnistream.runtime.dlq import dead_letter, guarded

if TYPE_CHECKING:
    from omnistream.runtime.app import Runtime

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(runtime: Runtime) -> None:
    @runtime.app.agent(runtime.topics.sources, name="ingest", concurrency=1)
    async def ingest(stream: Any) -> None:
        async for record in stream.events():
            await guarded(runtime, "ingest", record.message, on_record)

    async def on_record(message: Any) -> None:
        started = monotonic()
        try:
            event = parse_event(message.value or b"")
        except EventError as exc:
            await dead_letter(runtime, message, exc.reason, exc.detail)
            return
        M.events_ingested.labels(event.source, event_type_label(event.type)).inc()
        await runtime.topics.customer_events.send(
            key=route_key(event).encode(), value=message.value
        )
        M.stage_seconds.labels("ingest").observe(monotonic() - started)
