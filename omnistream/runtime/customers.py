"""The customer agent: one input at a time per customer, state in one table row.

For each input on ``omni.customer-events`` it reads the customer's row, hands row, input and
``now`` to the pure engine, writes the row back once (only if it changed) and carries out the
commands: sends to ``omni.send.<channel>``, timers to the timer index, lifecycle facts to metrics.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from omnistream.clock import monotonic, utcnow
from omnistream.domain.commands import CancelTimer, Command, Emit, ScheduleTimer, Send
from omnistream.domain.events import Event, EventError, parse_event
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.observability.metrics import M
from omnistream.runtime.ingest import dead_letter

if TYPE_CHECKING:
    from omnistream.runtime.app import Runtime

__all__ = ["input_kind", "install"]

log = logging.getLogger(__name__)


def input_kind(event: Event) -> str:
    """Label for metrics: customer event, timer firing or send outcome."""
    if event.source != "omnistream":
        return "event"
    return "timer" if event.type == "timer_fired" else "outcome"


def _record_emit(emit: Emit) -> None:
    if emit.name == "journey_entered":
        M.journey_entries.labels(emit.journey_id, str(emit.control).lower()).inc()
    elif emit.name == "journey_exited":
        M.journey_exits.labels(emit.journey_id, emit.reason or "completed").inc()
    elif emit.name == "journey_step":
        M.journey_steps.labels(emit.journey_id, emit.step_id or "").inc()
    else:
        M.journey_goals.labels(emit.journey_id).inc()


async def _route_send(runtime: Runtime, send: Send) -> None:
    """Produce to the first configured channel of the chain (disabled channels are skipped)."""
    while send.channel not in runtime.topics.sends:
        if send.next_channel is None:
            M.sends.labels(send.channel, "none", "channel_disabled").inc()
            log.warning("send %s: no configured channel left in its chain", send.send_id)
            return
        send = send.fallen_back()
    M.send_commands.labels(send.channel, send.category).inc()
    await runtime.topics.sends[send.channel].send(
        key=send.customer_key.encode(), value=send.to_json()
    )


async def execute(runtime: Runtime, commands: list[Command]) -> None:
    for command in commands:
        if isinstance(command, Send):
            await _route_send(runtime, command)
        elif isinstance(command, ScheduleTimer):
            runtime.timers.schedule(command.customer_key, command.timer_id, command.due)
        elif isinstance(command, CancelTimer):
            runtime.timers.cancel(command.customer_key, command.timer_id)
        else:
            _record_emit(command)


def install(runtime: Runtime) -> None:
    table = runtime.customers

    @runtime.app.agent(runtime.topics.customer_events, name="customers", concurrency=1)
    async def customers(stream: Any) -> None:
        async for record in stream.events():
            started = monotonic()
            message = record.message
            try:
                event = parse_event(message.value or b"")
            except EventError as exc:
                await dead_letter(runtime, message, exc.reason, exc.detail)
                continue
            key = message.key or event.customer_key.encode()
            raw = table.get(key)
            state = CustomerState.from_bytes(raw) if raw else CustomerState(key=key.decode())
            M.customer_inputs.labels(input_kind(event)).inc()
            if state.seen(event.event_id):
                M.events_duplicate.inc()
                continue
            try:
                new_state, commands = step(runtime.catalog, state, event, utcnow())
            except Exception as exc:  # the engine must never stop the worker
                log.exception("engine failed on event %s", event.event_id)
                M.engine_errors.labels(type(exc).__name__).inc()
                await dead_letter(runtime, message, "engine_error", f"{type(exc).__name__}: {exc}")
                continue
            if new_state is not state:
                table[key] = new_state.to_bytes()
            await execute(runtime, commands)
            M.stage_seconds.labels("customer").observe(monotonic() - started)
