"""The pure journey engine: ``step(catalog, state, event, now) -> (state, commands)``.

No Kafka, Redis, HTTP or clock: the runtime hands in the state row, the input event and ``now``,
and carries out the commands that come back. A repeated input (same event id) changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from liquid import Environment

from omnistream.domain.commands import Command, Emit, Message, Send, send_id_for
from omnistream.domain.events import Event
from omnistream.domain.profile import apply_event
from omnistream.domain.state import CustomerState, Instance, JourneyRecord
from omnistream.journey.model import Catalog, ExitStep, Journey, SendStep

__all__ = ["step"]

_LIQUID = Environment()


def step(
    catalog: Catalog, state: CustomerState, event: Event, now: datetime
) -> tuple[CustomerState, list[Command]]:
    """Advance one customer by one input."""
    if state.seen(event.event_id):
        return state, []
    new = state.model_copy(deep=True)
    new.remember(event.event_id)
    new.profile = apply_event(new.profile, event)
    commands: list[Command] = []
    for journey in catalog.triggered_by(event.type):
        commands.extend(_enter(journey, new, event, now))
    return new, commands


def _enter(journey: Journey, state: CustomerState, event: Event, now: datetime) -> list[Command]:
    state.seq += 1
    instance = Instance(
        instance_id=f"{journey.id}:{state.seq}",
        journey_id=journey.id,
        version=journey.version,
        step_id=journey.steps[0].id,
        entered_at=now,
        trigger=event.model_dump(mode="json"),
    )
    record = state.history.setdefault(journey.id, JourneyRecord())
    record.entries += 1
    record.last_entered_at = now
    commands: list[Command] = [Emit(name="journey_entered", journey_id=journey.id)]
    current: SendStep | ExitStep | None = journey.steps[0]
    while isinstance(current, SendStep):
        commands.append(_send(journey, instance, current, state, event))
        current = journey.step_by_id(current.next) if current.next else None
    record.last_exit_reason = "completed"
    commands.append(Emit(name="journey_exited", journey_id=journey.id, reason="completed"))
    return commands


def _send(
    journey: Journey, instance: Instance, step: SendStep, state: CustomerState, event: Event
) -> Send:
    context = {
        "profile": state.profile.model_dump(mode="json"),
        "event": event.model_dump(mode="json"),
    }
    messages = {
        channel: Message(
            subject=_LIQUID.from_string(msg.subject).render(**context) if msg.subject else None,
            body=_LIQUID.from_string(msg.body).render(**context),
            data=msg.data,
        )
        for channel, msg in step.content.items()
    }
    profile = state.profile
    return Send(
        send_id=send_id_for(journey.id, instance.instance_id, step.id, 0, customer_key=state.key),
        customer_key=state.key,
        journey_id=journey.id,
        journey_version=journey.version,
        instance_id=instance.instance_id,
        step_id=step.id,
        chain=step.channels,
        category=step.category,
        messages=messages,
        addresses={c: profile.addresses[c] for c in step.channels if c in profile.addresses},
        consents={c: profile.consents_to(c, step.category) for c in step.channels},
        caused_by=event.event_id,
        caused_at=event.timestamp,
    )
