"""Small builders shared by the journey tests."""

from __future__ import annotations

import itertools
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from omnistream.domain.commands import CancelTimer, Command, ScheduleTimer, Send
from omnistream.domain.events import Event, key_fields
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.journey.loader import load_catalog
from omnistream.journey.model import Catalog

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 12:00 in Kyiv
_ids = itertools.count()


def catalog_of(tmp: Path, *journeys: str, policies: str | None = None) -> Catalog:
    tmp.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(journeys):
        (tmp / f"j{i}.yaml").write_text(textwrap.dedent(text))
    if policies is not None:
        (tmp / "policies.yaml").write_text(textwrap.dedent(policies))
    return load_catalog(tmp)


def ev(kind: str, at: datetime = T0, key: str = "c1", **properties: Any) -> Event:
    return Event(
        event_id=f"e{next(_ids)}",
        type=kind,
        source="site",
        timestamp=at,
        properties=properties,
        **key_fields(key),
    )


def outcome(kind: str, send: Send, at: datetime, **extra: Any) -> Event:
    props = {
        "send_id": send.send_id,
        "journey_id": send.journey_id,
        "instance_id": send.instance_id,
        "step_id": send.step_id,
        "channel": send.channel,
        **extra,
    }
    return Event(
        event_id=f"o{next(_ids)}",
        type=kind,
        source="omnistream",
        timestamp=at,
        properties=props,
        **key_fields(send.customer_key),
    )


def timer_event(state: CustomerState, timer_id: str) -> Event:
    timer = state.timers[timer_id]
    return Event(
        event_id=f"timer:{timer_id}",
        type="timer_fired",
        source="omnistream",
        timestamp=timer.due,
        properties={"timer_id": timer_id, "instance_id": timer.instance_id},
        **key_fields(state.key),
    )


def fire_next(catalog: Catalog, state: CustomerState) -> tuple[CustomerState, list[Command]]:
    """Fire the earliest pending timer at its due time."""
    timer = min(state.timers.values(), key=lambda t: (t.due, t.timer_id))
    return step(catalog, state, timer_event(state, timer.timer_id), timer.due)


def sends(commands: list[Command]) -> list[Send]:
    return [c for c in commands if isinstance(c, Send)]


def scheduled(commands: list[Command]) -> list[ScheduleTimer]:
    return [c for c in commands if isinstance(c, ScheduleTimer)]


def cancelled(commands: list[Command]) -> list[CancelTimer]:
    return [c for c in commands if isinstance(c, CancelTimer)]


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
