"""Time-based triggers: "27 days after order_placed", "every 40 days", "birthday at 10:00".

There is no scheduler outside the customer's row: a time trigger is a timer of purpose
``trigger`` on the row (no instance yet). An ``after`` trigger is re-armed by every matching
event, so "40 days after the *last* dog-food order" falls out naturally; ``repeat`` re-arms it
after it fires. A ``date`` trigger is kept in step with the profile trait and the customer's
time zone; when either changes the timer moves.

An ``attribute_changed`` trigger has no timer: the engine asks ``attribute_changes`` right after
an event's profile update (before any journey step touches the profile) and enters the journeys
it returns once the event's own journey work is done, as it does for ``segment_entered``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from omnistream.domain.profile import Profile
from omnistream.domain.state import Timer
from omnistream.journey.model import DateTrigger, Journey, duration_of
from omnistream.journey.runner import Tx, enter
from omnistream.policies.quiet_hours import local_at, zone

__all__ = [
    "AttributeChange",
    "arm_after",
    "attribute_changes",
    "enter_on_changes",
    "fire_trigger",
    "next_date",
    "sync_dates",
    "trigger_timers",
]

AttributeChange = tuple[Journey, dict[str, Any]]
"""A journey and the synthetic ``attribute_changed`` event that enters it."""


def trigger_timers(tx: Tx) -> dict[str, Timer]:
    """journey id -> its pending trigger timer on this row."""
    return {t.journey_id: t for t in tx.state.timers.values() if t.purpose == "trigger"}


def arm_after(tx: Tx, journey: Journey, event: dict[str, Any], due: datetime, repeat: int) -> None:
    """(Re)arm the journey's ``after`` trigger; a newer matching event replaces an older one."""
    old = trigger_timers(tx).get(journey.id)
    if old is not None:
        tx.cancel_timer(old.timer_id)
    tx.add_timer(
        Timer(
            timer_id=f"{journey.id}:trigger:{tx.next_seq()}",
            instance_id="",
            due=due,
            purpose="trigger",
            journey_id=journey.id,
            payload={"event": event, "repeat": repeat},
        )
    )


def _month_day(value: Any) -> tuple[int | None, int, int] | None:
    """(year or None, month, day) from ``1990-05-17``, ``--05-17``/``05-17`` or a timestamp."""
    if not isinstance(value, str):
        return None
    text = value.strip().removeprefix("--")
    try:
        if len(text) == 5:
            month, day = (int(p) for p in text.split("-"))
            date(2000, month, day)  # validates, leap year allows 02-29
            return None, month, day
        parsed = date.fromisoformat(text[:10])
    except ValueError:
        return None
    return parsed.year, parsed.month, parsed.day


def _on(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:  # 29 February outside a leap year
        return date(year, month, day - 1)


def next_date(value: Any, spec: DateTrigger, tz_name: str, now: datetime) -> datetime | None:
    """The next instant strictly after ``now`` for this profile date, or None."""
    parts = _month_day(value)
    if parts is None:
        return None
    year, month, day = parts
    tz = zone(tz_name, "UTC")
    if spec.yearly:
        this_year = now.astimezone(tz).year
        for candidate_year in range(this_year - 1, this_year + 3):
            due = local_at(_on(candidate_year, month, day), spec.at, tz) + spec.offset
            if due > now:
                return due
        return None
    if year is None:
        return None
    due = local_at(_on(year, month, day), spec.at, tz) + spec.offset
    return due if due > now else None


def sync_dates(tx: Tx) -> None:
    """Keep each date-triggered journey's timer in step with the profile (cheap when unchanged)."""
    pending: dict[str, Timer] | None = None
    profile = tx.state.profile
    for journey in tx.catalog.dated:
        spec = journey.trigger.date
        assert spec is not None  # catalog.dated holds date triggers only
        value = profile.traits.get(spec.trait)
        if not value and not tx.state.timers:
            continue  # the common case: no date, nothing armed
        tz_name = profile.timezone or tx.policies(journey.id).default_timezone
        key = f"{value}|{tz_name}" if value else None
        if pending is None:
            pending = trigger_timers(tx)
        old = pending.get(journey.id)
        if old is not None and old.payload.get("key") == key:
            continue
        if old is not None:
            tx.cancel_timer(old.timer_id)
        due = next_date(value, spec, tz_name, tx.now) if key is not None else None
        if due is None:
            continue
        tx.add_timer(
            Timer(
                timer_id=f"{journey.id}:trigger:{tx.next_seq()}",
                instance_id="",
                due=due,
                purpose="trigger",
                journey_id=journey.id,
                payload={"key": key, "trait": spec.trait, "value": value},
            )
        )


def fire_trigger(tx: Tx, timer: Timer) -> None:
    """A trigger timer fired: enter the journey, then re-arm (repeat / next year)."""
    journey = tx.catalog.journeys.get(timer.journey_id)
    if journey is None or journey.status != "active":
        return
    trigger = journey.trigger
    if trigger.date is not None:
        event = {
            "type": "date_reached",
            "timestamp": timer.due.isoformat(),
            "properties": {
                "trait": timer.payload.get("trait"),
                "value": timer.payload.get("value"),
            },
        }
        if trigger.when is None or trigger.when.test(_ctx(tx, event)):
            enter(tx, journey, event)
        sync_dates(tx)
        return
    event = timer.payload.get("event") or {}
    enter(tx, journey, event)
    repeat = int(timer.payload.get("repeat", 0))
    after = duration_of(trigger.after, _ctx(tx, event)) if trigger.after is not None else None
    if repeat > 0 and isinstance(after, timedelta):
        arm_after(tx, journey, event, timer.due + after, repeat - 1)


def _ctx(tx: Tx, event: dict[str, Any]) -> dict[str, Any]:
    return {"event": event, "trigger": event, "profile": tx.profile_json, "vars": {}, "now": tx.now}


def attribute_changes(tx: Tx, before: Profile) -> list[AttributeChange]:
    """The ``attribute_changed`` journeys this event's profile update fires, with their events.

    ``before`` is the profile as the event found it, ``tx.state.profile`` as ``apply_event``
    left it (an event that changes nothing returns the same object: nothing to judge). Each
    trigger renders only its own value, so the cost is a few dict lookups per trigger.
    """
    after = tx.state.profile
    if after is before:
        return []
    found: list[AttributeChange] = []
    for journey in tx.catalog.attribute_triggers:
        spec = journey.trigger.attribute_changed
        assert spec is not None  # catalog.attribute_triggers holds these only
        change = spec.change(before, after)
        if change is None:
            continue
        properties = {
            "path": spec.path,
            "from": change[0],
            "to": change[1],
            "cause": tx.event.type,
            "event_id": tx.event.event_id,
        }
        event = {"type": "attribute_changed", "timestamp": tx.now.isoformat()}
        found.append((journey, {**event, "properties": properties}))
    return found


def enter_on_changes(tx: Tx, changes: list[AttributeChange]) -> None:
    """Enter each changed journey whose ``when`` (over the change and the profile) holds."""
    for journey, event in changes:
        when = journey.trigger.when
        if when is None or when.test(_ctx(tx, event)):
            enter(tx, journey, event)
