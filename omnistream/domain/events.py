"""The event envelope: the one shape every event has on every omnistream topic.

Backend teams produce JSON envelopes to ``omni.events.<source>``; omnistream itself produces the
same envelope (source ``omnistream``) for timer firings and send outcomes on
``omni.customer-events``, so the customer agent sees one kind of input in one order.

Parsing is strict and bounded: a payload is rejected *before* it is fully decoded when it is too
large, and after decoding when it nests too deeply, so a hostile producer cannot make a worker
spend unbounded memory or recursion on one message. Every rejection is an ``EventError`` with a
short machine ``reason`` (used as a metric label and in the DLQ record) and a human ``detail``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from omnistream.domain.vocabulary import RESERVED_KEY_PREFIXES, SYSTEM_SOURCE, is_system_event_type
from omnistream.domain.vocabulary import SOURCES as BACKEND_SOURCES

__all__ = [
    "MAX_DEPTH",
    "MAX_EVENT_BYTES",
    "SOURCES",
    "Event",
    "EventError",
    "check_producer_event",
    "event_json_schema",
    "key_fields",
    "parse_event",
]

MAX_EVENT_BYTES: Final = 64 * 1024
"""Largest accepted raw event. Customer events are small; anything bigger is a bug or an attack."""

MAX_DEPTH: Final = 10
"""Deepest accepted nesting of objects/arrays inside one event."""

SOURCES: Final = (*BACKEND_SOURCES, SYSTEM_SOURCE)
"""Where events come from; ``omnistream`` marks events the system itself produced."""

RESERVED_PREFIXES: Final = RESERVED_KEY_PREFIXES
"""Prefixes of provisional row keys (see domain/identity.py); only omnistream may use them."""

Source = Literal["site", "app", "crm", "store", "omnistream"]

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@+\-]{0,127}$"
_TYPE = r"^[a-z][a-z0-9_.]{0,63}$"


class EventError(ValueError):
    """A payload that is not a valid event. ``reason`` is a short, bounded label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Event(BaseModel):
    """One thing that happened to one customer."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=4096)

    event_id: str = Field(pattern=_ID, description="Unique id chosen by the producer; dedup key.")
    type: str = Field(pattern=_TYPE, description="What happened, e.g. `cart_updated`.")
    source: Source = Field(description="Which system produced the event.")
    customer_id: str | None = Field(
        default=None, pattern=_ID, description="Known customer id (after login / in the CRM)."
    )
    anonymous_id: str | None = Field(
        default=None, pattern=_ID, description="Cookie or device id before the customer is known."
    )
    timestamp: datetime = Field(description="When it happened, ISO 8601 with a UTC offset.")
    properties: dict[str, Any] = Field(default_factory=dict, description="Event payload.")
    context: dict[str, Any] = Field(
        default_factory=dict, description="Where it happened: device, page, store, locale..."
    )

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamp must carry a UTC offset, e.g. 2026-01-31T10:00:00Z")
        return value

    @model_validator(mode="after")
    def _has_identity(self) -> Event:
        if self.customer_id is None and self.anonymous_id is None:
            raise ValueError("an event needs customer_id or anonymous_id (or both)")
        cid = self.customer_id
        if cid is not None and self.source != SYSTEM_SOURCE and cid.startswith(RESERVED_PREFIXES):
            raise ValueError(
                f"customer_id must not start with {', '.join(RESERVED_PREFIXES)}: "
                "those prefixes name omnistream's internal row keys"
            )
        return self

    @property
    def customer_key(self) -> str:
        """The key this event is processed under before identity resolution knows better."""
        if self.customer_id is not None:
            return self.customer_id
        assert self.anonymous_id is not None  # guaranteed by _has_identity
        return f"{ANONYMOUS_PREFIX}{self.anonymous_id}"

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_defaults=True))


ANONYMOUS_PREFIX: Final = "anon:"


def key_fields(customer_key: str) -> dict[str, str]:
    """The identity fields of an event addressed to ``customer_key`` (inverse of customer_key).

    System events (timer firings, send outcomes) use this so they land on the same row.
    """
    if customer_key.startswith(ANONYMOUS_PREFIX):
        return {"anonymous_id": customer_key[len(ANONYMOUS_PREFIX) :]}
    return {"customer_id": customer_key}


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of decoded JSON, stopping early once ``limit`` is exceeded."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _describe(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "event"
    more = error.error_count() - 1
    suffix = f" (+{more} more)" if more else ""
    return f"{where}: {first['msg']}{suffix}"


def parse_event(raw: bytes | bytearray | memoryview | str) -> Event:
    """Decode and validate one raw event, or raise ``EventError`` with a precise reason."""
    if isinstance(raw, str):
        raw = raw.encode()
    size = len(raw)
    if size > MAX_EVENT_BYTES:
        raise EventError("too_large", f"{size} bytes, limit is {MAX_EVENT_BYTES}")
    if size == 0:
        raise EventError("empty", "the message has no value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventError("malformed_json", str(exc)) from None
    if not isinstance(data, dict):
        raise EventError("not_an_object", f"expected a JSON object, got {type(data).__name__}")
    depth = _depth(data, MAX_DEPTH)
    if depth > MAX_DEPTH:
        raise EventError("too_deep", f"nesting deeper than {MAX_DEPTH} levels")
    try:
        return Event.model_validate(data)
    except ValidationError as exc:
        raise EventError("invalid", _describe(exc)) from None


def check_producer_event(event: Event, now: datetime, max_future: timedelta) -> None:
    """Refuse what a backend producer may not say on a source topic (``EventError``).

    - ``reserved``: the source ``omnistream`` or a system event type (timer firings, send
      outcomes, erasure; ``domain/vocabulary.py``): those come only from omnistream itself, on
      its internal topic, so a producer cannot move a journey on, forge engagement, withdraw
      consent or erase a customer. (Reserved key prefixes are refused by ``Event`` itself for
      every source but ``omnistream``.)
    - ``future_timestamp``: a time more than ``max_future`` ahead of ``now``. ``last_seen`` keeps
      the latest time it saw, so one event dated 9999 would freeze it there for good.
    """
    if event.source == SYSTEM_SOURCE:
        raise EventError("reserved", f"source {SYSTEM_SOURCE!r} is omnistream's own")
    if is_system_event_type(event.type):
        raise EventError("reserved", f"event type {event.type!r} is produced by omnistream only")
    if event.timestamp > now + max_future:
        raise EventError(
            "future_timestamp",
            f"timestamp {event.timestamp.isoformat()} is more than "
            f"{max_future.total_seconds():.0f} s ahead of the worker's clock",
        )


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of the envelope, for producers' CI and editors."""
    schema = Event.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://omnistream.dev/schemas/event.json"
    schema["description"] = (
        f"omnistream event envelope. At most {MAX_EVENT_BYTES} bytes of JSON, "
        f"nested at most {MAX_DEPTH} levels; customer_id or anonymous_id is required."
    )
    return schema
