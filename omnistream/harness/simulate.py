"""``journeys simulate`` on the harness: the same timeline, but every input takes the worker's path.

Inputs go through the memory broker to their own key's partition and row (an anonymous visitor
is another row than the scenario's customer), timers fire as the worker's ``timer_fired``
records, and sends land on the channel topics. The timeline lines and their format are those of
``omnistream.journey.simulate`` (docs/journeys.md, "Simulate"); lines are written for the
scenario's customer and for every other key the events file names.

An author's ``message_*`` event without a ``send_id`` is attached to the latest send when it is
due, so the file is converted one event at a time, after the harness has run up to its time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from omnistream.channels.dispatcher import Dispatch
from omnistream.domain.commands import Command, Send
from omnistream.domain.events import Event
from omnistream.domain.profile import Profile
from omnistream.domain.state import CustomerState
from omnistream.domain.vocabulary import TIMER_FIRED
from omnistream.harness.clock import ManualClock
from omnistream.harness.delivery import Delivery
from omnistream.harness.run import DispatchObserver, Harness
from omnistream.journey.model import Catalog
from omnistream.journey.simulate import (
    DEFAULT_RUN_ON,
    Line,
    Simulation,
    record_commands,
    to_event,
)
from omnistream.runtime.runtime import StepObserver

__all__ = ["simulate_on_harness"]


def _timeline(sim: Simulation, customer_key: str) -> StepObserver:
    """Timeline lines for each step; lines of another key than the scenario's end in ``[key]``."""

    def observe(
        event: Event, before: CustomerState, after: CustomerState, commands: list[Command]
    ) -> None:
        first = len(sim.timeline)
        if event.type == TIMER_FIRED:
            timer = before.timers.get(str(event.properties.get("timer_id")))
            purpose = timer.purpose if timer is not None else "stale"
            text = f"{purpose} {event.properties.get('timer_id')}"
            sim.timeline.append(Line(event.timestamp, "timer", text))
        else:
            sim.timeline.append(Line(event.timestamp, "event", f"{event.type} {event.event_id}"))
        record_commands(sim, event.timestamp, after, commands)
        if before.key != customer_key:
            lines = sim.timeline[first:]
            sim.timeline[first:] = [Line(x.at, x.kind, f"{x.text} [{before.key}]") for x in lines]

    return observe


def _deliveries(sim: Simulation, customer_key: str) -> DispatchObserver:
    """A ``deliver`` line and a ``deliveries`` entry per outcome the dispatcher reported."""

    def observe(at: datetime, send: Send, result: Dispatch) -> None:
        for event in result.outcomes:
            outcome = event.type.removeprefix("message_")
            reason = event.properties.get("reason")
            reason = str(reason) if reason is not None else None
            sim.deliveries.append((at, send.step_id, send.channel, outcome, reason))
            text = f"{send.journey_id} {send.step_id} {send.channel} {outcome}"
            text += f" {reason}" if reason else ""
            suffix = f" [{send.customer_key}]" if send.customer_key != customer_key else ""
            sim.timeline.append(Line(at, "deliver", text + suffix))

    return observe


def _at(data: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(data["timestamp"]))


def simulate_on_harness(
    catalog: Catalog,
    events: Iterable[Mapping[str, Any]],
    *,
    profile: Mapping[str, Any] | None = None,
    customer_key: str = "customer-1",
    until: datetime | None = None,
    partitions: int = 4,
    delivery: Delivery | None = None,
) -> Simulation:
    """Feed ``events`` (JSON-like dicts) through the harness on a manual clock.

    With ``delivery``, the channel agents run too and each of their answers is a ``deliver`` line.
    """
    raw = sorted(enumerate(events), key=lambda pair: _at(pair[1]))
    sim = Simulation()
    start = _at(raw[0][1]) if raw else until
    if start is None:
        return sim
    harness = Harness(catalog, ManualClock(start), partitions=partitions, delivery=delivery)
    harness.dispatch_observers.append(_deliveries(sim, customer_key))
    harness.seed(CustomerState(key=customer_key, profile=Profile.model_validate(profile or {})))
    harness.observers.append(_timeline(sim, customer_key))
    for number, data in raw:
        at = _at(data)
        harness.run_until(at)  # timers due by the event's time fire first, as in the worker
        harness.publish(to_event(data, number, customer_key, sim))
        harness.run_until(at)
    last = _at(raw[-1][1]) if raw else start
    harness.run_until(until or last + DEFAULT_RUN_ON)
    sim.state = harness.row(customer_key)
    return sim
