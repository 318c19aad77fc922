"""The engine's side of a broadcast (``trigger.schedule``): one customer's turn, made idempotent.

The runtime scans the rows of the partitions it owns and produces one ``broadcast_due`` input
per matching customer into the customer's own partition (``runtime/broadcasts.py``). Here, on
the customer agent's normal path, that input arms a timer for the customer's local ``at`` time
(or enters at once if that time has come), and the timer's firing enters the journey. Entering
goes through ``runner.enter``, so entry rules, the control group, caps, quiet hours, consent and
send dedup apply as for any journey.

"No customer messaged twice for one occurrence" holds at three levels: the input's event id is
derived from journey, occurrence and customer (the row's recent ids drop a replay); a pending
timer of the same occurrence makes a repeated input a no-op; and an entry at or after this
occurrence's due time in the journey's history makes both a late input and a second firing a
no-op (``schedule.MAX_LATE`` keeps yesterday's late entries before today's due time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from omnistream.domain.events import Event, key_fields
from omnistream.domain.state import Timer
from omnistream.domain.vocabulary import BROADCAST_DUE, SYSTEM_SOURCE
from omnistream.journey.model import Catalog, Journey
from omnistream.journey.runner import Tx, enter
from omnistream.journey.schedule import due_at, occurrence_id, parse_occurrence
from omnistream.journey.targeting import Targeting
from omnistream.policies.quiet_hours import zone

__all__ = [
    "BROADCAST_PURPOSE",
    "broadcast_due_event",
    "broadcast_timer_id",
    "customer_due",
    "fire_broadcast",
    "in_audience",
    "on_broadcast_due",
]

BROADCAST_PURPOSE: Final = "broadcast"
"""Purpose of the timer that enters a customer at their local time."""


def broadcast_timer_id(journey_id: str, occurrence: str) -> str:
    return f"{journey_id}:broadcast:{occurrence}"


def broadcast_due_event(customer_key: str, journey_id: str, day: date, now: datetime) -> Event:
    """The input the runtime produces for one customer. Its id is derived from journey,
    occurrence and customer (hashed: ids are at most 128 characters of a small alphabet), so
    producing it again (a rescan after a crash) is dropped as a repeated id."""
    occurrence = occurrence_id(day)
    digest = hashlib.sha256(f"{journey_id}\x1f{occurrence}\x1f{customer_key}".encode())
    return Event(
        event_id=f"broadcast:{occurrence}:{digest.hexdigest()[:40]}",
        type=BROADCAST_DUE,
        source=SYSTEM_SOURCE,
        timestamp=now,
        properties={"journey_id": journey_id, "occurrence": occurrence},
        **key_fields(customer_key),
    )


def in_audience(
    journey: Journey, targeting: Targeting, profile: Mapping[str, Any], now: datetime
) -> bool:
    """Is the customer (profile as JSON) in the journey's audience segment at ``now``?

    No ``audience`` means everyone; a segment missing from ``targeting`` (the set was reloaded
    without it) means no one, never everyone.
    """
    name = journey.trigger.audience
    if name is None:
        return True
    condition = targeting.segments.get(name)
    return condition is not None and bool(condition({"profile": profile, "now": now}))


def customer_zone(timezone: str | None, catalog: Catalog, journey: Journey) -> ZoneInfo:
    """The zone a customer's local time is read in (profile, else the policies' default)."""
    default = catalog.merged_policies.get(journey.id, catalog.policies).default_timezone
    return zone(timezone, default)


def customer_due(catalog: Catalog, journey: Journey, timezone: str | None, day: date) -> datetime:
    """When occurrence ``day`` of ``journey`` is due for a customer in ``timezone``."""
    assert journey.trigger.schedule is not None  # broadcast journeys only
    return due_at(journey.trigger.schedule, day, customer_zone(timezone, catalog, journey))


def _occurrence(catalog: Catalog, props: Mapping[str, Any]) -> tuple[Journey, date] | None:
    journey = catalog.journeys.get(str(props.get("journey_id", "")))
    if journey is None or journey.status != "active" or journey.trigger.schedule is None:
        return None
    day = parse_occurrence(journey.trigger.schedule, props.get("occurrence"))
    return (journey, day) if day is not None else None


def _entered(tx: Tx, journey: Journey, due: datetime) -> bool:
    record = tx.state.history.get(journey.id)
    last = record.last_entered_at if record is not None else None
    return last is not None and last >= due


def on_broadcast_due(tx: Tx) -> None:
    """A ``broadcast_due`` input: arm the customer's local-time entry, or enter now."""
    found = _occurrence(tx.catalog, tx.event.properties)
    if found is None:
        return  # the journey was removed, paused or edited to another schedule
    journey, day = found
    due = customer_due(tx.catalog, journey, tx.state.profile.timezone, day)
    timer_id = broadcast_timer_id(journey.id, occurrence_id(day))
    if timer_id in tx.state.timers or _entered(tx, journey, due):
        return
    if due <= tx.now:
        _enter(tx, journey, day, due)
        return
    tx.add_timer(
        Timer(
            timer_id=timer_id,
            instance_id="",
            due=due,
            purpose=BROADCAST_PURPOSE,
            journey_id=journey.id,
            payload={"occurrence": occurrence_id(day)},
        )
    )


def fire_broadcast(tx: Tx, timer: Timer) -> None:
    """The customer's local time came: enter, if still in the audience and not too late."""
    found = _occurrence(tx.catalog, {"journey_id": timer.journey_id, **timer.payload})
    if found is not None:
        _enter(tx, *found, timer.due)


def _enter(tx: Tx, journey: Journey, day: date, due: datetime) -> None:
    schedule = journey.trigger.schedule
    assert schedule is not None  # _occurrence
    if tx.now > due + schedule.late or _entered(tx, journey, due):
        return
    event = {
        "type": "broadcast",
        "timestamp": due.isoformat(),
        "properties": {"journey_id": journey.id, "occurrence": occurrence_id(day)},
    }
    profile = tx.profile_json
    if not in_audience(journey, tx.catalog.targeting, profile, tx.now):
        return
    when = journey.trigger.when
    ctx = {"event": event, "trigger": event, "profile": profile, "vars": {}, "now": tx.now}
    if when is None or when.test(ctx):
        enter(tx, journey, event)
