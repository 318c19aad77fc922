"""Channel agents: one per configured channel over ``omni.send.<channel>``.

Each is a thin adapter around the channel ``Dispatcher`` (dedup, consent, caps, expiry,
provider call): it produces the outcome events back to the customer's partition, so journeys and
the profile see them, and a fallen-back send to the next channel's topic. A send whose claim
another worker holds is produced again to the end of its own topic (same key), so the agent goes
on with the sends behind it; like every output, it is acknowledged before the offset that
consumed the original is committed, so a crash in between repeats the command, never loses it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from omnistream.channels.dispatcher import Dispatch
from omnistream.clock import monotonic
from omnistream.domain.commands import Send
from omnistream.observability.logging import bind_log_context, clear_log_context
from omnistream.observability.metrics import M
from omnistream.runtime.dlq import dead_letter, guarded
from omnistream.runtime.faust_types import Message, Topic

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["install", "on_send"]

log = logging.getLogger(__name__)


def install(runtime: Runtime) -> None:
    app = runtime.app
    dispatcher = runtime.channels.dispatcher

    @app.on_before_shutdown.connect
    def _close(app_: Any, **_: Any) -> None:
        app.add_future(runtime.channels.aclose())

    # A rebalance (and a stop) waits for the record each channel agent is handling: never
    # make it wait out a provider's retry sequence (``Dispatcher.should_yield``).
    dispatcher.should_yield = lambda: bool(app.rebalancing or app.should_stop)

    @app.timer(dispatcher.lease.renewal_s)
    async def _renew_lease() -> None:
        """Keep this worker's lease while it lives, also during a long provider call, so its
        claims are never taken over; a killed worker's lease lapses and its claims are."""
        await dispatcher.lease.renew()

    for channel, topic in runtime.topics.sends.items():
        _install_channel(runtime, channel, topic)


async def on_send(runtime: Runtime, channel: str, message: Message) -> tuple[Send, Dispatch] | None:
    """One record of ``omni.send.<channel>``: the dispatcher's answer carried out (outcome events
    to the customer's partition, a held send to the end of its own topic, a fallback to the next
    channel's). Returns the send and that answer (``None`` for a record that is not a send:
    dead-lettered)."""
    started = monotonic()
    try:
        send = Send.model_validate_json(message.value or b"")
    except ValidationError as exc:
        await dead_letter(runtime, message, "invalid_send", str(exc)[:500])
        return None
    clear_log_context()
    bind_log_context(
        stage="channel",
        customer_id=send.customer_key,
        event_id=send.caused_by,
        journey=send.journey_id,
        step=send.step_id,
        channel=send.channel,
        send_id=send.send_id,
    )
    result = await runtime.channels.dispatcher.handle(send, runtime.clock())
    key = send.customer_key.encode()
    if result.retry is not None:  # another worker holds its claim: behind the others
        await runtime.topics.sends[channel].send(key=key, value=result.retry.to_json())
        return send, result
    for outcome in result.outcomes:
        await runtime.topics.customer_events.send(key=key, value=outcome.to_json())
    if result.forward is not None:
        forward = result.forward
        target = runtime.topics.sends.get(forward.channel)
        if target is None:
            log.warning("fallback to disabled channel %s dropped", forward.channel)
            M.sends.labels(forward.channel, "none", "channel_disabled").inc()
        else:
            await target.send(key=key, value=forward.to_json())
    M.stage_seconds.labels("channel").observe(monotonic() - started)
    return send, result


def _install_channel(runtime: Runtime, channel: str, topic: Topic) -> None:
    """The channel's agent: a thin Faust adapter around ``on_send``."""

    async def on_record(message: Message) -> None:
        await on_send(runtime, channel, message)

    async def agent(stream: Any) -> None:
        async for record in stream.events():
            await guarded(runtime, "channel", record.message, on_record)

    agent.__name__ = agent.__qualname__ = f"send_{channel}"
    runtime.app.agent(topic, name=f"send-{channel}", concurrency=1)(agent)
