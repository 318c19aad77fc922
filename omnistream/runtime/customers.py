"""The customer agent: every input about one customer key, one at a time, in partition order.

It reads the source topics (validated and routed by ``runtime/ingest.py``: an event already in
its customer's partition is handled right here, any other is forwarded) and
``omni.customer-events``, which carries forwarded events, timer firings, send outcomes and
identity messages (claims, releases, merges; see ``runtime/identity.py``). For an event at key K it
forwards along ``aliases[K]`` if K was merged into another customer; otherwise it reads K's row,
hands row, event and ``now`` to the pure engine, records the identifiers the event revealed and
carries out the commands without waiting for the broker. The rows it changed, the records it
produced and the inputs themselves go into the batch (``runtime/batch.py``), which writes each
changed row once after the broker acknowledged the batch's records, then acks the inputs.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from omnistream.clock import monotonic
from omnistream.domain.events import Event, EventError, parse_event
from omnistream.domain.identity import FORGET_EVENT, claims_for, resolve
from omnistream.domain.journey_events import Cause
from omnistream.domain.state import CustomerState
from omnistream.domain.vocabulary import BROADCAST_DUE, SYSTEM_SOURCE, TIMER_FIRED
from omnistream.journey.engine import step
from omnistream.observability.logging import bind_log_context, clear_log_context
from omnistream.observability.metrics import M
from omnistream.runtime import identity, ingest
from omnistream.runtime.batch import CustomerBatch
from omnistream.runtime.commands import execute
from omnistream.runtime.dlq import dead_letter, guarded
from omnistream.runtime.faust_types import Message
from omnistream.runtime.journey_events import StatsDeltas

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = [
    "input_kind",
    "install",
    "on_event",
    "on_parsed",
    "on_record",
    "on_source_record",
]

log = logging.getLogger(__name__)


def input_kind(event: Event) -> str:
    """Label for metrics: customer event, timer firing, broadcast turn or send outcome."""
    if event.source != SYSTEM_SOURCE:
        return "event"
    return _SYSTEM_KINDS.get(event.type, "outcome")


_SYSTEM_KINDS: Final = {TIMER_FIRED: "timer", BROADCAST_DUE: "broadcast"}


async def on_event(
    runtime: Runtime, batch: CustomerBatch, key: bytes, event: Event, message: Message
) -> None:
    target = resolve(key.decode(), identity.alias_of(runtime, key))
    if target is not None:  # K was merged into another customer: follow the alias
        forward = await runtime.topics.customer_events.send(
            key=target.encode(), value=message.value or b""
        )
        batch.produced([forward])
        return
    if event.type == FORGET_EVENT:
        await batch.flush_earlier()
        await identity.forget_customer(runtime, key)
        return
    state = batch.row(key) or CustomerState(key=key.decode())
    M.customer_inputs.labels(input_kind(event)).inc()
    try:
        now = runtime.clock()
        new_state, commands = step(runtime.catalog, state, event, now)
        for observe in runtime.step_observers:
            observe(event, state, new_state, commands)
        if new_state is state:  # the engine hands back the same row only for a repeated id
            M.events_duplicate.inc()
            return
        new_state, claims, releases = claims_for(new_state, event)
    except Exception as exc:  # the engine must never stop the worker
        log.exception("engine failed on event %s", event.event_id)
        M.engine_errors.labels(type(exc).__name__).inc()
        await dead_letter(runtime, message, "engine_error", f"{type(exc).__name__}: {exc}")
        return
    cause = Cause(key.decode(), now, event, state, new_state)
    pending = await execute(runtime, commands, cause, count=batch.count)
    pending += await identity.publish(runtime, claims, releases)
    batch.produced(pending)
    batch.put(key, new_state)


async def on_parsed(
    runtime: Runtime, batch: CustomerBatch, key: bytes, event: Event, message: Message
) -> None:
    """One parsed input at ``key``, with the log context and the stage timing around it."""
    started = monotonic()
    clear_log_context()
    bind_log_context(stage="customer", customer_id=key.decode(), event_id=event.event_id)
    await on_event(runtime, batch, key, event, message)
    M.stage_seconds.labels("customer").observe(monotonic() - started)


async def on_source_record(runtime: Runtime, batch: CustomerBatch, message: Message) -> None:
    """A producer's record: validated and handled here or forwarded (``runtime/ingest.py``)."""
    forwarded = await ingest.on_source_record(runtime, message, partial(on_parsed, runtime, batch))
    batch.produced(forwarded)


async def on_record(runtime: Runtime, batch: CustomerBatch, message: Message) -> None:
    """A record of ``omni.customer-events``: an identity message or an event for its key."""
    raw: bytes = message.value or b""
    key: bytes | None = message.key
    if key is None:
        await dead_letter(runtime, message, "no_key", "customer inputs must be keyed")
        return
    if identity.is_identity_message(raw):
        if batch.holds(key):  # identity handling reads and writes key's rows directly
            await batch.flush_earlier()
        await identity.on_message(runtime, key, raw, message)
        return
    try:
        event = parse_event(raw)
    except EventError as exc:
        await dead_letter(runtime, message, exc.reason, exc.detail)
        return
    await on_parsed(runtime, batch, key, event, message)


def install(runtime: Runtime) -> None:
    """The customer agent: a thin Faust adapter around ``on_source_record`` and ``on_record``."""
    sources = frozenset(runtime.settings.source_topics)
    settings = runtime.settings

    async def crash(exc: BaseException) -> None:
        await runtime.app.crash(exc)  # nothing of the batch was acked: handled again

    batch = CustomerBatch(
        runtime.customers,
        max_records=settings.customer_batch_max_records,
        max_age_s=settings.customer_batch_max_ms / 1000,
        on_error=crash,
        stats=StatsDeltas(runtime.journey_stats) if runtime.journey_stats is not None else None,
    )
    from_source = partial(on_source_record, runtime, batch)
    from_customer_events = partial(on_record, runtime, batch)

    @runtime.app.agent(runtime.topics.customer_inputs, name="customers", concurrency=1)
    async def customers(stream: Any) -> None:
        async for record in stream.noack().events():
            message = record.message
            async with batch.lock:
                batch.hold(record)
                if message.topic in sources:
                    await guarded(runtime, "ingest", message, from_source)
                else:
                    await guarded(runtime, "customer", message, from_customer_events)
                if batch.full:
                    await batch.barrier()
