"""Ingest: source records in, valid events to their customer's partition, the rest to the DLQ.

An event belongs to the partition of its highest-ranked identifier (``route_key``: the customer
id when there is one), so everything about one customer is handled in one place, in order. The
customer agent reads the source topics itself (``runtime/customers.py``) and hands each source
record here:

- A record that is already in its customer's partition, on a worker that owns that partition,
  is handled **directly**: a backend that keys its records by customer id with Kafka's default
  partitioner, on the same partition count, costs one consume per event instead of two consumes
  and a produce (docs/performance.md).
- Any other record is **forwarded** byte for byte (no re-serialisation) to
  ``omni.customer-events`` under its route key, and handled when it comes back there.

Both paths end in the same customer-agent code, so they give the same rows and sends;
``omnistream_ingest_routes_total`` shows which one the traffic takes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from omnistream.clock import monotonic
from omnistream.domain.events import Event, EventError, check_producer_event, parse_event
from omnistream.domain.identity import route_key
from omnistream.observability.metrics import M, event_type_label
from omnistream.runtime.delivery import Pending
from omnistream.runtime.dlq import dead_letter
from omnistream.runtime.faust_types import Message

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["Handle", "on_source_record"]

log = logging.getLogger(__name__)

Handle = Callable[[bytes, Event, Any], Awaitable[None]]
"""The customer agent's handler for a parsed event: (customer key, event, raw message)."""


async def on_source_record(runtime: Runtime, message: Message, handle: Handle) -> Pending:
    """Validate one source record; handle it here, forward it, or dead-letter it. Returns the
    delivery of the forwarded record, which must be acknowledged before the input is acked.

    Besides the envelope, a source record must not say what only omnistream may say (reserved
    sources and event types) nor come from the far future (``check_producer_event``): the check
    happens here, before forwarding, because ``omni.customer-events`` trusts what it carries.
    """
    started = monotonic()
    max_future = timedelta(seconds=runtime.settings.max_future_skew_s)
    raw = message.value or b""
    try:
        event = parse_event(raw)
        check_producer_event(event, runtime.clock(), max_future)
    except EventError as exc:
        _read(runtime, message, None)
        await dead_letter(runtime, message, exc.reason, exc.detail)
        return []
    _read(runtime, message, event.timestamp)  # handled or forwarded below, before the next one
    M.events_ingested.labels(event.source, event_type_label(event.type)).inc()
    key = route_key(event).encode()
    direct = runtime.owned.handles_here(key, message.partition)
    M.ingest_routes.labels("direct" if direct else "forwarded").inc()
    M.stage_seconds.labels("ingest").observe(monotonic() - started)
    if direct:
        await handle(key, event, message)
        return []
    return [await runtime.topics.customer_events.send(key=key, value=raw)]


def _read(runtime: Runtime, message: Message, at: datetime | None) -> None:
    """Tell the timer loop's gate this source record was read (``runtime/watermarks.py``)."""
    if runtime.watermarks is not None:
        runtime.watermarks.handled(message.topic, message.partition, message.offset, at)
