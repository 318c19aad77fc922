"""Run the pure engine on a virtual clock: the author's preview and the golden tests' runner.

Events are fed in timestamp order; before each one, every timer due by then fires (earliest
first), exactly as the runtime would produce them, and after the last event the clock runs on
to ``until``. Nothing reads the wall clock and nothing is random, so the timeline is the same on
every machine: it can be diffed, reviewed and checked into CI.

Authors cannot know send ids in advance, so a ``message_*`` event in the input without a
``send_id`` is attached to the latest send (of ``step_id``, when given): "the customer opened
the push" is written as ``{"type": "message_opened", "properties": {"step_id": "notify"}}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from omnistream.domain.commands import CancelTimer, Command, Emit, ScheduleTimer, Send
from omnistream.domain.events import Event, key_fields
from omnistream.domain.profile import Profile
from omnistream.domain.state import CustomerState
from omnistream.domain.timers import timer_fired_event
from omnistream.domain.vocabulary import SYSTEM_SOURCE
from omnistream.journey.engine import step
from omnistream.journey.model import Catalog

__all__ = [
    "DEFAULT_RUN_ON",
    "Line",
    "SentMessage",
    "Simulation",
    "record_commands",
    "simulate",
    "to_event",
]

DEFAULT_RUN_ON: Final = timedelta(days=180)
_MAX_INPUTS: Final = 100_000


@dataclass(frozen=True)
class Line:
    """One timeline entry: ``at``, what happened (``kind``) and a human text."""

    at: datetime
    kind: str
    text: str

    def __str__(self) -> str:
        return f"{self.at.isoformat()}  {self.kind:<6} {self.text}"


@dataclass(frozen=True)
class SentMessage:
    at: datetime
    journey_id: str
    step_id: str
    channel: str
    subject: str | None
    body: str
    send: Send


@dataclass
class Simulation:
    timeline: list[Line] = field(default_factory=list)
    sends: list[SentMessage] = field(default_factory=list)
    exits: list[tuple[datetime, str, str]] = field(default_factory=list)
    """(at, journey id, reason)."""
    goals: list[tuple[datetime, str]] = field(default_factory=list)
    deliveries: list[tuple[datetime, str, str, str, str | None]] = field(default_factory=list)
    """(at, step, channel, sent | failed | suppressed, reason): the channel agents' answers,
    filled only when the harness runs them (a scenario's ``delivery`` model)."""
    state: CustomerState | None = None

    def render(self) -> str:
        return "\n".join(str(line) for line in self.timeline)


def to_event(raw: Mapping[str, Any], number: int, customer_key: str, sim: Simulation) -> Event:
    """An input of the events file as the engine sees it (ids, source and send ids filled in)."""
    data = dict(raw)
    data.setdefault("event_id", f"sim-{number}")
    data.setdefault("source", "site")
    if "customer_id" not in data and "anonymous_id" not in data:
        data.update(key_fields(customer_key))
    kind = str(data.get("type", ""))
    props = dict(data.get("properties") or {})
    if kind.startswith("message_") and "send_id" not in props:
        wanted = props.get("step_id")
        match = next(
            (s.send for s in reversed(sim.sends) if wanted in (None, s.step_id)),
            None,
        )
        if match is not None:
            data["source"] = SYSTEM_SOURCE
            props.update(
                send_id=match.send_id,
                journey_id=match.journey_id,
                instance_id=match.instance_id,
                step_id=match.step_id,
            )
            props.setdefault("channel", match.channel)
        data["properties"] = props
    return Event.model_validate(data)


def record_commands(
    sim: Simulation, at: datetime, state: CustomerState, commands: list[Command]
) -> None:
    """Append the timeline lines, sends, exits and goals of one step's ``commands``."""
    for command in commands:
        if isinstance(command, Send):
            message = command.messages[command.channel]
            sim.sends.append(
                SentMessage(
                    at,
                    command.journey_id,
                    command.step_id,
                    command.channel,
                    message.subject,
                    message.body,
                    command,
                )
            )
            text = f"{message.subject} | {message.body}" if message.subject else message.body
            chain = "->".join(command.chain[command.position :])
            sim.timeline.append(
                Line(
                    at,
                    "send",
                    f"{command.journey_id} {command.step_id} {command.channel} "
                    f"[{command.category}, chain {chain}] {text!r}",
                )
            )
        elif isinstance(command, ScheduleTimer):
            timer = state.timers[command.timer_id]
            what = f"{timer.journey_id} {timer.step_id or 'trigger'} ({timer.purpose})"
            sim.timeline.append(Line(at, "wait", f"{what} until {command.due.isoformat()}"))
        elif isinstance(command, CancelTimer):
            sim.timeline.append(Line(at, "cancel", command.timer_id))
        elif isinstance(command, Emit):
            _record_emit(sim, at, command)


def _record_emit(sim: Simulation, at: datetime, emit: Emit) -> None:
    control = " (control group: no sends)" if emit.control else ""
    if emit.name == "journey_entered":
        instance = emit.attributes.get("instance_id")
        sim.timeline.append(Line(at, "enter", f"{emit.journey_id} {instance}{control}"))
    elif emit.name == "journey_exited":
        reason = emit.reason or "completed"
        sim.exits.append((at, emit.journey_id, reason))
        sim.timeline.append(Line(at, "exit", f"{emit.journey_id} {reason} at {emit.step_id}"))
    elif emit.name == "journey_goal":
        sim.goals.append((at, emit.journey_id))
        sim.timeline.append(Line(at, "goal", emit.journey_id))
    else:
        attrs = {k: v for k, v in emit.attributes.items() if k not in ("instance_id", "send_id")}
        extra = f" {attrs}" if attrs else ""
        reason = f" {emit.reason}" if emit.reason else ""
        sim.timeline.append(Line(at, "step", f"{emit.journey_id} {emit.step_id}{reason}{extra}"))


def simulate(
    catalog: Catalog,
    events: Iterable[Mapping[str, Any]],
    *,
    profile: Mapping[str, Any] | None = None,
    customer_key: str = "customer-1",
    until: datetime | None = None,
) -> Simulation:
    """Feed ``events`` (JSON-like dicts) through ``catalog`` on a virtual clock."""
    sim = Simulation()
    raw = sorted(
        enumerate(events), key=lambda pair: datetime.fromisoformat(str(pair[1]["timestamp"]))
    )
    state = CustomerState(key=customer_key, profile=Profile.model_validate(profile or {}))
    last = datetime.fromisoformat(str(raw[-1][1]["timestamp"])) if raw else None
    horizon = until or (last + DEFAULT_RUN_ON if last is not None else None)
    pending = list(raw)
    for _ in range(_MAX_INPUTS):
        due = min(((t.due, t.timer_id) for t in state.timers.values()), default=None)
        next_event_at = datetime.fromisoformat(str(pending[0][1]["timestamp"])) if pending else None
        if due is not None and (next_event_at is None or due[0] <= next_event_at):
            if next_event_at is None and (horizon is None or due[0] > horizon):
                break
            timer = state.timers[due[1]]
            event = timer_fired_event(customer_key, timer.timer_id, timer.due)
            sim.timeline.append(Line(timer.due, "timer", f"{timer.purpose} {timer.timer_id}"))
        elif pending:
            number, data = pending.pop(0)
            event = to_event(data, number, customer_key, sim)
            sim.timeline.append(Line(event.timestamp, "event", f"{event.type} {event.event_id}"))
        else:
            break
        state, commands = step(catalog, state, event, event.timestamp)
        record_commands(sim, event.timestamp, state, commands)
    sim.state = state
    return sim
