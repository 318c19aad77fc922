"""The journey event stream (``omni.journey-events``): one record per thing a journey did. Pure.

Every entry, step, send command, send outcome, goal and exit becomes one ``JourneyEvent``,
keyed by customer key, in the one JSON schema below (``omnistream schema journey-events``,
docs/journey-events.md). This is what users sink into their warehouse, and what the fleet-wide
stats are counted from (``domain/journey_stats.py``).

Where records come from: the engine's commands (``Emit`` -> entered/step/goal/exited, ``Send``
-> send) and the outcome events the customer agent handles (``message_*`` from the system
source). ``journey_events`` maps them; the runtime only produces the result.

Record ids are deterministic: uuid5 of (customer key, causing event id, ordinal of the record
among those the input produced). The engine is deterministic for a given row and input, so a
replay after a crash repeats the same records with the same ids, and a sink can drop repeats.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field

from omnistream.domain.commands import Command, Emit, Send
from omnistream.domain.events import Event
from omnistream.domain.state import CustomerState, Instance
from omnistream.domain.vocabulary import OUTCOME_PREFIX, SYSTEM_SOURCE

__all__ = [
    "OUTCOMES",
    "SCHEMA_VERSION",
    "Cause",
    "JourneyEvent",
    "JourneyLookup",
    "Kind",
    "Outcome",
    "journey_event_json_schema",
    "journey_events",
    "outcome_of",
    "record_id",
]

SCHEMA_VERSION: Final = 1
"""Bumped on any change a reader could notice (a field renamed, removed or re-typed)."""

Kind = Literal["entered", "step", "send", "outcome", "goal", "exited"]
Outcome = Literal[
    "sent",
    "delivered",
    "opened",
    "clicked",
    "failed",
    "bounced",
    "unsubscribed",
    "capped",
    "suppressed",
    "fallback",
]

OUTCOMES: Final[dict[str, Outcome]] = {
    "message_sent": "sent",
    "message_delivered": "delivered",
    "message_opened": "opened",
    "message_clicked": "clicked",
    "message_failed": "failed",
    "message_delivery_failed": "failed",
    "message_bounced": "bounced",
    "message_unsubscribed": "unsubscribed",
    "message_suppressed": "suppressed",
    "message_fallback": "fallback",
}
"""Outcome event types (channel agents and provider receipts) and what the stream calls them.
A suppression whose reason is a frequency cap (``cap_*``) is ``capped``."""

_KINDS: Final[dict[str, Kind]] = {
    "journey_entered": "entered",
    "journey_step": "step",
    "journey_goal": "goal",
    "journey_exited": "exited",
}
_NAMESPACE: Final = uuid.UUID("3d0f6a8e-5b1c-4e2a-9f47-2c8b61d0e7a4")


class JourneyEvent(BaseModel):
    """One record of ``omni.journey-events`` (key: ``customer_key``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = Field(default=SCHEMA_VERSION, description="Version of this schema.")
    record_id: str = Field(
        description="Deterministic id (uuid5): a record repeated by a replay has the same id."
    )
    kind: Kind = Field(description="What happened: entered, step, send, outcome, goal, exited.")
    outcome: Outcome | None = Field(default=None, description="For kind=outcome: which one.")
    customer_key: str = Field(description="The customer's row key (the record's Kafka key).")
    journey_id: str | None = Field(
        default=None, description="Null only for a receipt whose send no live instance holds."
    )
    journey_version: str | None = Field(
        default=None, description="The version the instance runs (null when unknown)."
    )
    step_id: str | None = None
    instance_id: str | None = None
    control: bool | None = Field(
        default=None, description="Whether the instance is in the control group (null: unknown)."
    )
    path: str | None = Field(
        default=None,
        description="Split path: the variant chosen (kind=step at a split step), or for "
        "goal/exited records the variant(s) this customer is assigned ('step=variant,...').",
    )
    channel: str | None = None
    send_id: str | None = None
    cost: float | None = Field(
        default=None, description="Price of one message on the channel (outcome=sent only)."
    )
    currency: str | None = None
    reason: str | None = Field(
        default=None, description="Exit reason, suppression/fallback/failure reason."
    )
    at: datetime = Field(description="When it happened (the engine's clock or the outcome's).")
    caused_by: str | None = Field(
        default=None, description="Event id of the input that caused the record."
    )
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="Extra detail (attempt, to_channel, outcome...)."
    )

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class JourneyLookup(Protocol):
    """What the mapping needs to know about the loaded journeys (``journey/event_lookup.py``)."""

    def version(self, journey_id: str) -> str | None:
        """The journey's current version (for instances the rows no longer hold)."""
        ...

    def cost(self, journey_id: str, channel: str) -> tuple[float, str] | None:
        """Price and currency of one message on ``channel`` for this journey's policies."""
        ...

    def path(self, journey_id: str, customer_key: str) -> str | None:
        """The split variant(s) this customer is assigned in the journey, or ``None``."""
        ...


@dataclass(frozen=True)
class Cause:
    """The input the commands came from, with the row before and after it."""

    customer_key: str
    at: datetime
    event: Event | None = None
    before: CustomerState | None = None
    after: CustomerState | None = None

    def instance(self, instance_id: str | None) -> Instance | None:
        """The instance as the input left it, or as it was before (an exit drops it)."""
        if instance_id is None:
            return None
        for row in (self.after, self.before):
            if row is not None and instance_id in row.instances:
                return row.instances[instance_id]
        return None

    def holder_of(self, send_id: str) -> Instance | None:
        """The instance whose current step sent ``send_id`` (receipts name only the send)."""
        for row in (self.before, self.after):
            for instance in row.instances.values() if row is not None else ():
                if send_id in instance.send_ids:
                    return instance
        return None


def record_id(customer_key: str, cause: str, ordinal: int) -> str:
    """uuid5 of the customer, the causing input and the record's place among its records.

    ``cause`` is the causing event id; merges and erasure (no event) use the instance id."""
    return str(uuid.uuid5(_NAMESPACE, f"{customer_key}\x1f{cause}\x1f{ordinal}"))


def outcome_of(event_type: str, reason: str | None) -> Outcome | None:
    """The stream's name for an outcome event type (``None``: not an outcome)."""
    outcome = OUTCOMES.get(event_type)
    if outcome == "suppressed" and reason is not None and reason.startswith("cap_"):
        return "capped"
    return outcome


def _version(instance: Instance | None, lookup: JourneyLookup, journey_id: str) -> str | None:
    if instance is not None:
        return instance.running_version or instance.version
    return lookup.version(journey_id)


def _from_emit(emit: Emit, cause: Cause, lookup: JourneyLookup) -> dict[str, Any]:
    attributes = dict(emit.attributes)
    instance_id = attributes.pop("instance_id", None)
    instance = cause.instance(instance_id)
    kind = _KINDS[emit.name]
    version = attributes.pop("version", None) if kind == "entered" else None
    path = attributes.get("variant") if kind == "step" else None
    if kind in ("goal", "exited"):
        path = lookup.path(emit.journey_id, cause.customer_key)
    return {
        "kind": kind,
        "journey_id": emit.journey_id,
        "journey_version": version or _version(instance, lookup, emit.journey_id),
        "step_id": emit.step_id,
        "instance_id": instance_id,
        "control": emit.control,
        "path": path,
        "send_id": attributes.get("send_id"),
        "reason": emit.reason,
        "attributes": attributes,
    }


def _from_send(send: Send) -> dict[str, Any]:
    return {
        "kind": "send",
        "journey_id": send.journey_id,
        "journey_version": send.journey_version,
        "step_id": send.step_id,
        "instance_id": send.instance_id,
        "control": False,
        "channel": send.channel,
        "send_id": send.send_id,
        "attributes": {"chain": list(send.chain), "category": send.category},
    }


def _from_outcome(event: Event, cause: Cause, lookup: JourneyLookup) -> dict[str, Any] | None:
    props = event.properties
    reason = props.get("reason")
    outcome = outcome_of(event.type, reason if isinstance(reason, str) else None)
    if outcome is None:
        return None
    send_id = props.get("send_id")
    instance = cause.instance(props.get("instance_id"))
    if instance is None and isinstance(send_id, str):
        instance = cause.holder_of(send_id)
    journey_id = props.get("journey_id") or (instance.journey_id if instance else None)
    channel = props.get("channel")
    if channel is None and instance is not None and instance.chain:
        channel = instance.chain[min(instance.position, len(instance.chain) - 1)]
    fields: dict[str, Any] = {
        "kind": "outcome",
        "outcome": outcome,
        "journey_id": journey_id,
        "journey_version": _version(instance, lookup, journey_id) if journey_id else None,
        "step_id": props.get("step_id") or (instance.step_id if instance else None),
        "instance_id": props.get("instance_id") or (instance.instance_id if instance else None),
        "control": False,
        "channel": channel,
        "send_id": send_id,
        "reason": reason,
        "attributes": {k: props[k] for k in ("to_channel", "error", "provider") if k in props},
    }
    if outcome == "sent" and journey_id and isinstance(channel, str):
        price = lookup.cost(journey_id, channel)
        if price is not None:
            fields["cost"], fields["currency"] = price
    return fields


def _is_outcome(event: Event | None) -> bool:
    return (
        event is not None
        and event.source == SYSTEM_SOURCE
        and event.type.startswith(OUTCOME_PREFIX)
    )


def journey_events(
    commands: Sequence[Command], cause: Cause, lookup: JourneyLookup
) -> list[JourneyEvent]:
    """The journey-event records of one input: its outcome (if it is one), then one record per
    ``Emit`` and ``Send`` in command order. Timers produce none."""
    drafts: list[dict[str, Any]] = []
    event = cause.event
    if event is not None and _is_outcome(event):
        draft = _from_outcome(event, cause, lookup)
        if draft is not None:
            drafts.append(draft)
    for command in commands:
        if isinstance(command, Emit):
            drafts.append(_from_emit(command, cause, lookup))
        elif isinstance(command, Send):
            drafts.append(_from_send(command))
    caused_by = event.event_id if event is not None else None
    return [
        JourneyEvent(
            record_id=record_id(
                cause.customer_key, caused_by or f"{draft['kind']}:{draft['instance_id']}", ordinal
            ),
            customer_key=cause.customer_key,
            at=event.timestamp if event is not None and draft["kind"] == "outcome" else cause.at,
            caused_by=caused_by,
            **draft,
        )
        for ordinal, draft in enumerate(drafts)
    ]


def journey_event_json_schema() -> dict[str, Any]:
    """The JSON Schema of one ``omni.journey-events`` record (docs/journey-events.md)."""
    schema = JourneyEvent.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://omnistream.dev/schemas/journey-event.json"
    schema["description"] = (
        f"One omni.journey-events record, schema version {SCHEMA_VERSION}; Kafka key: the "
        "customer key. Ids are deterministic: drop repeats by record_id (at-least-once)."
    )
    return schema
