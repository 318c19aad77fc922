"""Carry out what the pure engine decided: produce send commands, index timers, count emits.

Both the customer agent (``runtime/customers.py``) and identity handling (``runtime/identity.py``:
merges and erasure exit journeys and cancel timers too) use it, so it lives apart from both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from omnistream.domain.commands import CancelTimer, Command, Emit, ScheduleTimer, Send
from omnistream.domain.journey_events import Cause, JourneyEvent
from omnistream.domain.state import CustomerState
from omnistream.observability.metrics import M
from omnistream.runtime import journey_events
from omnistream.runtime.delivery import Pending

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["execute", "load_row"]

log = logging.getLogger(__name__)


def load_row(runtime: Runtime, key: bytes) -> CustomerState | None:
    raw = runtime.customers.get(key)
    return CustomerState.from_bytes(raw) if raw else None


def _record_emit(emit: Emit) -> None:
    if emit.name == "journey_entered":
        M.journey_entries.labels(emit.journey_id, str(emit.control).lower()).inc()
        M.journey_live_instances.labels(emit.journey_id).inc()
    elif emit.name == "journey_exited":
        M.journey_exits.labels(emit.journey_id, emit.reason or "completed").inc()
        M.journey_live_instances.labels(emit.journey_id).dec()
    elif emit.name == "journey_step":
        M.journey_steps.labels(emit.journey_id, emit.step_id or "").inc()
    else:
        M.journey_goals.labels(emit.journey_id).inc()


async def _route_send(runtime: Runtime, send: Send) -> Pending:
    """Produce to the first configured channel of the chain (disabled channels are skipped)."""
    while send.channel not in runtime.topics.sends:
        if send.next_channel is None:
            M.sends.labels(send.channel, "none", "channel_disabled").inc()
            log.warning("send %s: no configured channel left in its chain", send.send_id)
            return []
        send = send.fallen_back()
    M.send_commands.labels(send.channel, send.category).inc()
    delivery = await runtime.topics.sends[send.channel].send(
        key=send.customer_key.encode(), value=send.to_json()
    )
    return [delivery]


async def execute(
    runtime: Runtime,
    commands: list[Command],
    cause: Cause | None = None,
    count: Callable[[Sequence[JourneyEvent]], None] | None = None,
) -> Pending:
    """Carry out the engine's commands; returns the deliveries of the records it produced.

    With ``cause`` (the input and its row before and after), the journey events too, handed to
    ``count`` (the customer batch's stats) as well."""
    produced = journey_events.records(runtime, commands, cause)
    pending: Pending = await journey_events.publish(runtime, produced)
    if count is not None and produced:
        count(produced)
    for command in commands:
        if isinstance(command, Send):
            pending += await _route_send(runtime, command)
        elif isinstance(command, ScheduleTimer):
            runtime.timers.schedule(command.customer_key, command.timer_id, command.due)
        elif isinstance(command, CancelTimer):
            runtime.timers.cancel(command.customer_key, command.timer_id)
        else:
            _record_emit(command)
    return pending
