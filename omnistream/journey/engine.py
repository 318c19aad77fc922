"""The pure journey engine: ``step(catalog, state, event, now) -> (state, commands)``.

No Kafka, Redis, HTTP or clock: the runtime hands in the state row, the input event and ``now``,
and carries out the commands that come back. Inputs are customer events, timer firings
(``timer_fired``) and send outcomes (``message_*`` from source ``omnistream``). A repeated input
(same event id, hence same timer id) changes nothing; a firing whose timer is gone is stale.

Versions: an instance records the journey version it entered. When the file changes, the
instance continues at the same step id the next time it is touched; if that step is gone it exits
with reason ``step_removed`` (``journey_removed`` if the whole journey is gone). Nobody is
stranded: every parked instance holds a timer, so every instance is touched again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from omnistream.domain.commands import Command
from omnistream.domain.events import Event
from omnistream.domain.profile import Profile, apply_event
from omnistream.domain.state import (
    RECENT_EVENT_IDS,
    RECENT_EVENTS,
    CustomerState,
    EventSummary,
    Instance,
    Timer,
)
from omnistream.domain.vocabulary import BROADCAST_DUE, SYSTEM_SOURCE, TIMER_FIRED
from omnistream.journey.broadcast import BROADCAST_PURPOSE, fire_broadcast, on_broadcast_due
from omnistream.journey.model import (
    AnyStep,
    Catalog,
    Journey,
    SendStep,
    WaitForStep,
    WaitStep,
    duration_of,
)
from omnistream.journey.runner import Tx, enter, exit_instance, item_key, run
from omnistream.journey.segments import segments_of
from omnistream.journey.sending import (
    DELIVERY_OUTCOMES,
    deliver,
    engagement_timeout,
    finish,
    on_delivery_outcome,
    start_send,
)
from omnistream.journey.triggers import (
    arm_after,
    attribute_changes,
    enter_on_changes,
    fire_trigger,
    sync_dates,
)

__all__ = ["OUTCOMES", "TIMER_FIRED", "step"]

OUTCOMES: Final = DELIVERY_OUTCOMES
"""Outcome events (source ``omnistream``) that move a waiting send step."""


def step(
    catalog: Catalog, state: CustomerState, event: Event, now: datetime
) -> tuple[CustomerState, list[Command]]:
    """Advance one customer by one input. ``state`` is never mutated."""
    if event.event_id in state.recent_event_ids:
        return state, []
    recent = state.recent_event_ids[-(RECENT_EVENT_IDS - 1) :]
    update: dict[str, Any] = {
        "recent_event_ids": [*recent, event.event_id],
        "profile": apply_event(state.profile, event),
    }
    if event.type != TIMER_FIRED:
        summary = EventSummary(
            event_id=event.event_id, type=event.type, source=event.source, timestamp=event.timestamp
        )
        update["recent_events"] = [*state.recent_events[-(RECENT_EVENTS - 1) :], summary]
    new = state.model_copy(update=update)
    tx = Tx(catalog, new, event, now, start_send)
    if event.source == SYSTEM_SOURCE and event.type == TIMER_FIRED:
        _fire(tx)
        return tx.state, tx.commands
    if event.source == SYSTEM_SOURCE and event.type == BROADCAST_DUE:
        on_broadcast_due(tx)  # a scheduled broadcast's turn for this customer (broadcast.py)
        return tx.state, tx.commands
    entered = _segments_entered(tx, state.profile) if catalog.segment_triggers else []
    changed = attribute_changes(tx, state.profile) if catalog.attribute_triggers else []
    if event.source == SYSTEM_SOURCE and event.type in OUTCOMES:
        _outcome(tx)
    if event.type in catalog.listened and new.instances:
        _listen(tx)
    _trigger(tx)
    for name in entered:
        _enter_segment(tx, name)
    enter_on_changes(tx, changed)
    return tx.state, tx.commands


def _segments_entered(tx: Tx, before: Profile) -> list[str]:
    """Triggering segments this event's profile update moved the customer into (sorted).

    Judged on the profile as the event left it, before any journey step changed it, both at
    ``now`` (as ``segments.segments_entered``). Only catalogs with segment triggers pay, only
    for events that change the profile, only for the triggering segments, and the profile
    before is rendered and judged only if the customer is in one of them after the event
    (order-history segments cost ~100-400 us a view).
    """
    if tx.state.profile == before:
        return []
    targeting = tx.catalog.trigger_targeting
    after = segments_of(tx.profile_json, tx.now, targeting)
    if not after:
        return []
    return sorted(after - segments_of(before.model_dump(mode="json"), tx.now, targeting))


def _enter_segment(tx: Tx, name: str) -> None:
    """Enter the journeys triggered by segment ``name``; their ``trigger`` is a synthetic
    ``segment_entered`` event naming the segment and the event that caused it."""
    event = {
        "type": "segment_entered",
        "timestamp": tx.now.isoformat(),
        "properties": {"segment": name, "cause": tx.event.type, "event_id": tx.event.event_id},
    }
    for journey in tx.catalog.segment_triggers[name]:
        when = journey.trigger.when
        ctx = {"event": event, "trigger": event, "profile": tx.profile_json, "vars": {}}
        if when is None or when.test({**ctx, "now": tx.now}):
            enter(tx, journey, event)


def _resolve(tx: Tx, instance: Instance) -> tuple[Journey, AnyStep, Instance] | None:
    """The journey version and current step of ``instance``.

    An instance runs on the version it is pinned to while the catalog keeps it (current or
    retained). Only when that version is gone (more than ``MAX_RETAINED_VERSIONS`` edits, or a
    restart without the saved versions) does it continue at the same step id of the current one.
    """
    pinned = instance.running_version or instance.version
    journey = tx.catalog.journey_for(instance.journey_id, pinned)
    if journey is None:
        exit_instance(tx, instance, "journey_removed")
        return None
    step = journey.step_by_id(instance.step_id)
    if step is None:
        exit_instance(tx, instance, "step_removed", version=journey.version)
        return None
    if journey.version != pinned:
        instance = _switch(tx, instance, journey, step.id, "version_changed")
    return journey, step, instance


def _switch(tx: Tx, instance: Instance, journey: Journey, step_id: str, reason: str) -> Instance:
    """Move ``instance`` onto ``journey``'s version (recorded and emitted)."""
    old = instance.running_version or instance.version
    instance = instance.model_copy(update={"running_version": journey.version})
    tx.put_instance(instance)
    tx.emit(
        "journey_step",
        instance,
        step_id=step_id,
        reason=reason,
        attributes={"from": old, "to": journey.version, "at": instance.step_id},
    )
    return instance


def _migration(tx: Tx, journey: Journey, instance: Instance) -> tuple[Journey, AnyStep] | None:
    """The current version's step that opts in to taking this pinned instance, if any."""
    current = tx.catalog.journeys.get(journey.id)
    if current is None or current.version == journey.version:
        return None
    for target in current.steps:
        if instance.step_id in target.migrates_from:
            return current, target
    return None


def _fire(tx: Tx) -> None:
    timer_id = tx.event.properties.get("timer_id")
    timer = tx.state.timers.get(timer_id) if isinstance(timer_id, str) else None
    if timer is None:
        return  # stale: cancelled, already fired, or never ours
    tx.consume_timer(timer.timer_id)
    if timer.purpose == "trigger":
        fire_trigger(tx, timer)
        return
    if timer.purpose == BROADCAST_PURPOSE:
        fire_broadcast(tx, timer)
        return
    instance = tx.state.instances.get(timer.instance_id)
    if instance is None or instance.timer_id != timer.timer_id:
        return
    instance = instance.model_copy(update={"timer_id": None})
    tx.put_instance(instance)
    resolved = _resolve(tx, instance)
    if resolved is None:
        return
    journey, step, instance = resolved
    migration = _migration(tx, journey, instance)
    if migration is None:
        _resume(tx, journey, step, instance, timer)
        return
    current, target = migration
    instance = _switch(tx, instance, current, target.id, "migrated")
    if target.id == step.id:  # migrate: true -- the wait ends as the new version says
        _resume(tx, current, target, instance, timer)
    else:
        run(tx, current, instance, target)


def _next(journey: Journey, step_id: str | None) -> AnyStep | None:
    return journey.step_by_id(step_id) if step_id is not None else None


def _resume(tx: Tx, journey: Journey, step: AnyStep, instance: Instance, timer: Timer) -> None:
    """Continue after ``timer``; if the step changed type in an edit, re-run the step."""
    purpose = timer.purpose
    if purpose == "wait" and isinstance(step, WaitStep):
        run(tx, journey, instance, _next(journey, step.next))
    elif purpose == "timeout" and isinstance(step, WaitForStep):
        tx.emit("journey_step", instance, step_id=step.id, attributes={"outcome": "timeout"})
        run(tx, journey, instance, _next(journey, step.on_timeout))
    elif purpose == "quiet" and isinstance(step, SendStep):
        if not instance.chain:
            start_send(tx, journey, instance, step)
            return
        outcome, instance = deliver(tx, journey, instance, step)
        if outcome == "done":
            run(tx, journey, instance, _next(journey, step.next))
    elif purpose == "engage" and isinstance(step, SendStep) and instance.chain:
        engagement_timeout(tx, journey, instance, step)
    elif purpose == "outcome" and isinstance(step, SendStep):
        finish(tx, journey, instance, step, "no_outcome")
    else:
        run(tx, journey, instance, step)


def _outcome(tx: Tx) -> None:
    """A channel-agent outcome or a provider receipt: find the waiting send step it is for.

    Receipts carry the send id but no instance id, so the instance is found by its send ids.
    """
    props = tx.event.properties
    send_id = props.get("send_id")
    instance = tx.state.instances.get(str(props.get("instance_id", "")))
    if instance is None or send_id not in instance.send_ids:
        instance = next(
            (i for i in tx.state.instances.values() if send_id in i.send_ids and send_id), None
        )
    if instance is None or instance.timer_id is None:
        return
    resolved = _resolve(tx, instance)
    if resolved is None:
        return
    journey, step, instance = resolved
    if isinstance(step, SendStep):
        on_delivery_outcome(tx, journey, instance, step)


def _listen(tx: Tx) -> None:
    """Goals, exit events, awaited events and engagement for the customer's live instances."""
    kind = tx.event.type
    for instance_id in list(tx.state.instances):
        instance = tx.state.instances.get(instance_id)
        listens = tx.catalog.listens.get(instance.journey_id) if instance is not None else None
        if instance is None or listens is None or kind not in listens:
            continue
        resolved = _resolve(tx, instance)
        if resolved is None:
            continue
        journey, step, instance = resolved
        if not _same_item(tx, journey, instance):
            continue
        ctx = tx.context(instance, tx.event_json)
        goal = journey.goal
        reached = (
            goal is not None and goal.event == kind and (goal.when is None or goal.when.test(ctx))
        )
        if goal is not None and reached and not instance.goal_reached:
            instance = instance.model_copy(update={"goal_reached": True})
            tx.put_instance(instance)
            tx.emit("journey_goal", instance, step_id=step.id)
            if goal.exit:
                exit_instance(tx, instance, "goal")
                continue
        if any(m.event == kind and (m.when is None or m.when.test(ctx)) for m in journey.exit_on):
            exit_instance(tx, instance, "exit_event", event=kind)
            continue
        if instance.timer_id is None:
            continue
        target: AnyStep | None
        if isinstance(step, WaitForStep) and step.event == kind:
            if step.when is not None and not step.when.test(ctx):
                continue
            target = _next(journey, step.on_event)
        elif isinstance(step, SendStep) and step.engagement_fallback is not None:
            engaged = (
                kind in step.engagement_fallback.events
                and tx.event.properties.get("send_id") in instance.send_ids
            )
            if engaged or reached:
                clicked = engaged and kind == "message_clicked"
                finish(tx, journey, instance, step, "clicked" if clicked else "opened")
            continue
        else:
            continue
        tx.cancel_timer(instance.timer_id)
        instance = instance.model_copy(update={"timer_id": None})
        tx.emit("journey_step", instance, step_id=step.id, attributes={"outcome": kind})
        run(tx, journey, instance, target)


def _same_item(tx: Tx, journey: Journey, instance: Instance) -> bool:
    """Does the event concern this instance's item? An event naming another item (a re-order
    of course B) leaves course A's instance alone; an event naming none concerns every one."""
    if not instance.item_key:
        return True
    key = item_key(tx, journey, tx.event_json)
    return key is None or key == instance.item_key


def _trigger(tx: Tx) -> None:
    """Enter immediate journeys, arm ``after`` triggers, keep date triggers in step."""
    catalog, kind = tx.catalog, tx.event.type
    for journey in catalog.immediate.get(kind, ()):
        when = journey.trigger.when
        if when is None or when.test(_entry_ctx(tx)):
            enter(tx, journey, tx.event_json)
    for journey in catalog.delayed.get(kind, ()):
        trigger = journey.trigger
        assert trigger.after is not None  # catalog.delayed holds `after` triggers only
        if trigger.when is not None and not trigger.when.test(_entry_ctx(tx)):
            continue
        after = duration_of(trigger.after, _entry_ctx(tx))
        if isinstance(after, str):
            continue  # a computed delay this event cannot give: nothing to arm
        arm_after(tx, journey, tx.event_json, tx.event.timestamp + after, trigger.repeat)
    if catalog.dated:
        sync_dates(tx)


def _entry_ctx(tx: Tx) -> dict[str, object]:
    event = tx.event_json
    return {"event": event, "trigger": event, "profile": tx.profile_json, "vars": {}, "now": tx.now}
