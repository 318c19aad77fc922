"""What the pure engine asks the runtime to do.

The engine never performs I/O: it returns these commands and the runtime (Faust agents) carries
them out. ``Send`` is also the wire format of ``omni.send.<channel>``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CancelTimer",
    "Category",
    "Command",
    "Emit",
    "Message",
    "ScheduleTimer",
    "Send",
    "send_id_for",
]

Category = Literal["marketing", "transactional"]

_SEND_NAMESPACE = uuid.UUID("6f1c0a52-8d4b-4a57-9a0e-0b7c1f3b5e21")


def send_id_for(
    journey_id: str, instance_id: str, step_id: str, attempt: int, *, customer_key: str
) -> str:
    """Deterministic send id: the same step of the same instance always claims the same id.

    That is what makes a redelivered command (at-least-once Kafka) harmless: the channel agent
    claims the id in Redis before it calls a provider. The customer key is part of the name
    because instance ids are only unique within one customer's row.
    """
    name = f"{customer_key}\x1f{journey_id}\x1f{instance_id}\x1f{step_id}\x1f{attempt}"
    return str(uuid.uuid5(_SEND_NAMESPACE, name))


class Message(BaseModel):
    """Rendered content for one channel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str | None = None
    body: str
    data: dict[str, str] = Field(default_factory=dict)


class Send(BaseModel):
    """Deliver one message to one customer, trying ``chain`` in order from ``position``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["send"] = "send"
    send_id: str
    customer_key: str
    journey_id: str
    journey_version: str
    instance_id: str
    step_id: str
    chain: tuple[str, ...] = Field(min_length=1)
    position: int = 0
    category: Category = "marketing"
    messages: dict[str, Message]
    addresses: dict[str, str] = Field(default_factory=dict)
    consents: dict[str, bool] = Field(default_factory=dict)
    not_after: datetime | None = None
    caused_by: str
    caused_at: datetime
    touch_id: str | None = None
    """Sends of one touch (a ``together`` step: email + push with the same offer) share it; the
    caps count a touch once in the cross-channel and per-journey windows."""

    @property
    def cap_member(self) -> str:
        """What the cap windows count: the touch, else the send itself."""
        return self.touch_id or self.send_id

    @property
    def channel(self) -> str:
        return self.chain[self.position]

    @property
    def next_channel(self) -> str | None:
        nxt = self.position + 1
        return self.chain[nxt] if nxt < len(self.chain) else None

    def fallen_back(self) -> Send:
        """The same send, moved to the next channel of the chain."""
        return self.model_copy(update={"position": self.position + 1})

    def to_json(self) -> bytes:
        # Without a touch the field is left out, so a worker that predates it still reads the
        # command during a rolling upgrade (``extra="forbid"``).
        exclude = {"touch_id"} if self.touch_id is None else None
        return orjson.dumps(self.model_dump(mode="json", exclude=exclude))


class ScheduleTimer(BaseModel):
    """Fire ``timer_id`` for this customer at ``due`` (the row already records it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["schedule_timer"] = "schedule_timer"
    customer_key: str
    timer_id: str
    due: datetime


class CancelTimer(BaseModel):
    """Forget ``timer_id``: the row no longer holds it, and a late firing will be ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["cancel_timer"] = "cancel_timer"
    customer_key: str
    timer_id: str


class Emit(BaseModel):
    """A journey lifecycle fact for observers (metrics, analytics): entered, step, exited, goal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["emit"] = "emit"
    name: Literal["journey_entered", "journey_step", "journey_exited", "journey_goal"]
    journey_id: str
    step_id: str | None = None
    reason: str | None = None
    control: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)


Command = Send | ScheduleTimer | CancelTimer | Emit
