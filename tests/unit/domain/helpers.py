"""Builders shared by the domain tests: events and rows with little ceremony."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from omnistream.domain.events import Event
from omnistream.domain.profile import Profile, apply_event

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_ids = itertools.count()


def at(minutes: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ev(
    type: str,
    properties: dict[str, Any] | None = None,
    *,
    source: str = "site",
    customer_id: str | None = None,
    anonymous_id: str | None = None,
    minutes: float = 0,
    context: dict[str, Any] | None = None,
    event_id: str | None = None,
) -> Event:
    if customer_id is None and anonymous_id is None:
        anonymous_id = "a1"
    return Event.model_validate(
        {
            "event_id": event_id or f"e{next(_ids)}",
            "type": type,
            "source": source,
            "customer_id": customer_id,
            "anonymous_id": anonymous_id,
            "timestamp": at(minutes),
            "properties": properties or {},
            "context": context or {},
        }
    )


def outcome(kind: str, channel: str = "email", minutes: float = 0, **props: Any) -> Event:
    return ev(
        f"message_{kind}",
        {"channel": channel, **props},
        source="omnistream",
        customer_id="c1",
        minutes=minutes,
    )


def order(order_id: str, total: Any, minutes: float = 0, **extra: Any) -> Event:
    return ev(
        "order_placed",
        {"order_id": order_id, "total": total, **extra},
        customer_id="c1",
        minutes=minutes,
    )


def run(*events: Event, profile: Profile | None = None) -> Profile:
    profile = profile or Profile()
    for event in events:
        profile = apply_event(profile, event)
    return profile
