"""Moving one instance through its steps, inside one engine transaction (``Tx``).

``Tx`` wraps the *new* state row of one ``step`` call and copies containers on first write
(copy-on-write), so ``step`` never mutates its input and never deep-copies the whole row. Every
timer added to or removed from the row goes through ``Tx``, which emits the matching
``ScheduleTimer`` / ``CancelTimer``: the row and the commands can never disagree.

An instance is either running (inside one ``step`` call) or parked on exactly one timer.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Final, Literal, Protocol

from omnistream.domain.commands import CancelTimer, Command, Emit, ScheduleTimer
from omnistream.domain.events import Event
from omnistream.domain.state import CustomerState, Instance, JourneyRecord, Timer
from omnistream.journey.model import (
    AnyStep,
    BranchStep,
    Catalog,
    ExitStep,
    Journey,
    Policies,
    SendStep,
    SplitStep,
    UpdateProfileStep,
    WaitForStep,
    WaitStep,
    duration_of,
)
from omnistream.policies.quiet_hours import (
    WEEKDAYS,
    next_local_time,
    next_window_open,
    zone,
)

__all__ = [
    "MAX_ITEM_KEY",
    "MAX_TRANSITIONS",
    "Tx",
    "bucket",
    "enter",
    "exit_instance",
    "item_key",
    "park",
    "run",
]

MAX_TRANSITIONS: Final = 100
"""Instant steps one input may run for one instance; a safety net behind the loop check."""

MAX_ITEM_KEY: Final = 200
"""Characters of an ``instance_key`` value kept on the instance (longer ids are cut)."""

EmitName = Literal["journey_entered", "journey_step", "journey_exited", "journey_goal"]


class StartSend(Protocol):
    """Starts a send step (``journey/sending.py``: chain, quiet hours, rendering): ``"done"``
    when the step is over at once and ``run`` goes on, anything else when the instance parked
    or exited."""

    def __call__(
        self, tx: Tx, journey: Journey, instance: Instance, step: SendStep, /
    ) -> tuple[str, Instance]: ...


class Tx:
    """One ``step`` call's working state: the new row, the commands, cached JSON views.

    ``start_send`` is how ``run`` starts a send step. Sending calls ``run`` again when a send
    step ends (mutual recursion), so the engine passes it in rather than this module importing
    ``journey/sending.py``. A ``Tx`` without it (the console's preview, which only builds
    template contexts) cannot run a send step.
    """

    def __init__(
        self,
        catalog: Catalog,
        state: CustomerState,
        event: Event,
        now: datetime,
        start_send: StartSend | None = None,
    ):
        self.catalog = catalog
        self.state = state
        self.event = event
        self.now = now
        self.start_send = start_send
        self.commands: list[Command] = []
        self._owned: set[str] = set()
        self._event_json: dict[str, Any] | None = None
        self._profile_json: dict[str, Any] | None = None

    @property
    def started(self) -> datetime:
        """When this input happened: the event's time, never later than ``now`` (a producer's
        clock may run a little ahead). Waits run from here, not from when the worker got to the
        input, so an input read late (after a failover, behind a backlog) does not push every
        wait it starts back by the delay; the timer loop fires a due timer only once the inputs
        of its partition were read up to the due time (``runtime/watermarks.py``), so an order
        produced before the wait ended is seen first."""
        return min(self.event.timestamp, self.now)

    @property
    def event_json(self) -> dict[str, Any]:
        if self._event_json is None:
            self._event_json = self.event.model_dump(mode="json")
        return self._event_json

    @property
    def profile_json(self) -> dict[str, Any]:
        if self._profile_json is None:
            self._profile_json = self.state.profile.model_dump(mode="json")
        return self._profile_json

    def profile_changed(self) -> None:
        self._profile_json = None

    def _own(self, name: Literal["instances", "timers", "history"]) -> None:
        if name not in self._owned:
            setattr(self.state, name, dict(getattr(self.state, name)))
            self._owned.add(name)

    def put_instance(self, instance: Instance) -> None:
        self._own("instances")
        self.state.instances[instance.instance_id] = instance

    def drop_instance(self, instance_id: str) -> None:
        self._own("instances")
        self.state.instances.pop(instance_id, None)

    def add_timer(self, timer: Timer) -> None:
        self._own("timers")
        self.state.timers[timer.timer_id] = timer
        self.commands.append(
            ScheduleTimer(customer_key=self.state.key, timer_id=timer.timer_id, due=timer.due)
        )

    def cancel_timer(self, timer_id: str) -> None:
        """Remove a timer before it fired (emits ``CancelTimer``)."""
        if timer_id in self.state.timers:
            self._own("timers")
            del self.state.timers[timer_id]
            self.commands.append(CancelTimer(customer_key=self.state.key, timer_id=timer_id))

    def consume_timer(self, timer_id: str) -> None:
        """Remove a timer that just fired (no command: the runtime already fired it)."""
        self._own("timers")
        self.state.timers.pop(timer_id, None)

    def record(self, journey_id: str) -> JourneyRecord:
        """This journey's history record, copied into the new row for writing."""
        self._own("history")
        old = self.state.history.get(journey_id)
        record = old.model_copy() if old is not None else JourneyRecord()
        self.state.history[journey_id] = record
        return record

    def next_seq(self) -> int:
        self.state.seq += 1
        return self.state.seq

    def emit(self, name: EmitName, instance: Instance, **fields: Any) -> None:
        attributes = {"instance_id": instance.instance_id, **fields.pop("attributes", {})}
        self.commands.append(
            Emit(
                name=name,
                journey_id=instance.journey_id,
                control=instance.control,
                attributes=attributes,
                **fields,
            )
        )

    def policies(self, journey_id: str) -> Policies:
        return self.catalog.merged_policies.get(journey_id, self.catalog.policies)

    def context(self, instance: Instance, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """What conditions and templates see. ``event`` defaults to the triggering event."""
        return {
            "event": instance.trigger if event is None else event,
            "trigger": instance.trigger,
            "profile": self.profile_json,
            "vars": instance.vars,
            "journey": {"id": instance.journey_id, "instance_id": instance.instance_id},
            "now": self.now,
        }


def bucket(*parts: str) -> int:
    """A stable number in [0, 2**64) for a customer/journey/step (splits, control groups)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def park(tx: Tx, instance: Instance, purpose: str, due: datetime) -> Instance:
    """Stop here until ``due``: one timer, recorded on the row and scheduled."""
    if instance.timer_id is not None:
        tx.cancel_timer(instance.timer_id)
    timer_id = f"{instance.instance_id}:t{tx.next_seq()}"
    tx.add_timer(
        Timer(
            timer_id=timer_id,
            instance_id=instance.instance_id,
            due=due,
            purpose=purpose,
            journey_id=instance.journey_id,
            step_id=instance.step_id,
        )
    )
    parked = instance.model_copy(update={"timer_id": timer_id})
    tx.put_instance(parked)
    return parked


def exit_instance(tx: Tx, instance: Instance, reason: str, **attributes: Any) -> None:
    """End the instance: cancel its timer, drop it, remember why (history + Emit)."""
    if instance.timer_id is not None:
        tx.cancel_timer(instance.timer_id)
    tx.drop_instance(instance.instance_id)
    tx.record(instance.journey_id).last_exit_reason = reason
    tx.emit(
        "journey_exited",
        instance,
        step_id=instance.step_id,
        reason=reason,
        attributes=attributes,
    )


def item_key(tx: Tx, journey: Journey, event: dict[str, Any]) -> str | None:
    """The item ``event`` names for a per-item journey (``entry.instance_key``), as text.

    None when the journey is not per-item or the event names no item (null, empty, a list or
    a mapping): such an event enters nothing and, for goals and exits, concerns every item.
    """
    expr = journey.entry.instance_key
    if expr is None:
        return None
    ctx = {"event": event, "trigger": event, "profile": tx.profile_json, "vars": {}, "now": tx.now}
    value = expr.value(ctx)
    if value is None or isinstance(value, bool | list | tuple | dict) or value == "":
        return None
    return str(value)[:MAX_ITEM_KEY]


def _admits(tx: Tx, journey: Journey, key: str | None) -> bool:
    """Re-entry rules, then the live-instance bound (and one live instance per item)."""
    rules = journey.entry
    record = tx.state.history.get(journey.id)
    if record is not None and record.entries:
        if rules.reentry == "never":
            return False
        last = record.last_entered_at
        if rules.cooldown is not None and last is not None and tx.now - last < rules.cooldown:
            return False
    if rules.instance_key is not None and key is None:
        return False
    live = [i for i in tx.state.instances.values() if i.journey_id == journey.id]
    if key is not None and any(i.item_key == key for i in live):
        return False
    return len(live) < rules.max_instances


def enter(tx: Tx, journey: Journey, trigger: dict[str, Any]) -> Instance | None:
    """Apply the entry rules; start an instance at the first step if they allow it.

    Instance ids stay ``journey:seq`` for per-item journeys too (the row's counter), so send
    ids, which derive from them, keep their form and old instances keep working.
    """
    rules = journey.entry
    key = item_key(tx, journey, trigger)
    if not _admits(tx, journey, key):
        return None
    seq = tx.next_seq()
    instance = Instance(
        instance_id=f"{journey.id}:{seq}",
        journey_id=journey.id,
        version=journey.version,
        step_id=journey.first_step.id,
        entered_at=tx.now,
        trigger=trigger,
        vars=dict(journey.vars),
        item_key=key or "",
    )
    if rules.audience is not None and not rules.audience.test(tx.context(instance)):
        return None
    share = round(rules.control_percent * 100)
    control = share > 0 and bucket(tx.state.key, journey.id, "control") % 10_000 < share
    if control:
        instance = instance.model_copy(update={"control": True})
    history = tx.record(journey.id)
    history.entries += 1
    history.last_entered_at = tx.now
    tx.put_instance(instance)
    tx.emit("journey_entered", instance, attributes={"version": journey.version})
    run(tx, journey, instance, journey.first_step)
    return instance


def _target(journey: Journey, step_id: str | None) -> AnyStep | None:
    return journey.step_by_id(step_id) if step_id is not None else None


def _wait_due(tx: Tx, journey: Journey, instance: Instance, step: WaitStep) -> datetime | str:
    """When the wait ends, or why it cannot (a computed duration gave a bad value)."""
    if step.duration is not None:
        duration = duration_of(step.duration, tx.context(instance))
        return duration if isinstance(duration, str) else tx.started + duration
    policies = tx.policies(journey.id)
    tz = zone(tx.state.profile.timezone, policies.default_timezone)
    if step.until is not None:
        return next_local_time(tx.started, tz, step.until, step.days or WEEKDAYS)
    assert step.window is not None  # guaranteed by WaitStep._one_kind
    return next_window_open(tx.started, tz, step.window)


def _update_profile(tx: Tx, step: UpdateProfileStep) -> None:
    profile = tx.state.profile
    traits = dict(profile.traits)
    traits.update(step.set)
    for name, amount in step.increment.items():
        current = traits.get(name)
        number = (
            current if isinstance(current, int | float) and not isinstance(current, bool) else 0
        )
        traits[name] = number + amount
    if step.add_tags or step.remove_tags:
        old = traits.get("tags")
        tags = [t for t in old if isinstance(t, str)] if isinstance(old, list) else []
        tags.extend(t for t in step.add_tags if t not in tags)
        traits["tags"] = [t for t in tags if t not in step.remove_tags]
    tx.state.profile = profile.model_copy(update={"traits": traits})
    tx.profile_changed()


def _split(tx: Tx, journey: Journey, step: SplitStep) -> tuple[str, str | None]:
    total = sum(p.weight for p in step.paths)
    point = bucket(tx.state.key, journey.id, step.id) % total
    for path in step.paths:
        if point < path.weight:
            return path.name, path.next
        point -= path.weight
    return step.paths[-1].name, step.paths[-1].next  # unreachable: weights sum to total


def run(tx: Tx, journey: Journey, instance: Instance, step: AnyStep | None) -> None:
    """Execute instant steps from ``step`` until the instance parks on a timer or exits."""
    for _ in range(MAX_TRANSITIONS):
        if step is None:
            exit_instance(tx, instance, "completed")
            return
        instance = instance.model_copy(
            update={"step_id": step.id, "attempt": 0, "position": 0, "chain": (), "send_ids": ()}
        )
        tx.put_instance(instance)
        extra: dict[str, Any] = {}
        if isinstance(step, SendStep):
            if tx.start_send is None:
                raise RuntimeError("this Tx was built without start_send: it cannot send")
            outcome, instance = tx.start_send(tx, journey, instance, step)
            if outcome != "done":
                return
            nxt = step.next
        elif isinstance(step, WaitStep):
            due = _wait_due(tx, journey, instance, step)
            if isinstance(due, str):
                exit_instance(tx, instance, "bad_duration", detail=due)
                return
            if due > tx.started:  # parked even if already due: the timer loop decides when
                tx.emit("journey_step", instance, step_id=step.id)
                park(tx, instance, "wait", due)
                return
            nxt = step.next
        elif isinstance(step, WaitForStep):
            tx.emit("journey_step", instance, step_id=step.id)
            park(tx, instance, "timeout", tx.started + step.timeout)
            return
        elif isinstance(step, BranchStep):
            ctx = tx.context(instance)
            case = next((c for c in step.branches if c.when.test(ctx)), None)
            nxt = case.next if case is not None else step.otherwise
            extra = {"branch": case.when.source if case is not None else "else"}
        elif isinstance(step, SplitStep):
            variant, nxt = _split(tx, journey, step)
            extra = {"variant": variant}
        elif isinstance(step, UpdateProfileStep):
            _update_profile(tx, step)
            nxt = step.next
        else:
            assert isinstance(step, ExitStep)
            exit_instance(tx, instance, step.reason)
            return
        if not isinstance(step, SendStep):
            tx.emit("journey_step", instance, step_id=step.id, attributes=extra)
        step = _target(journey, nxt)
    exit_instance(tx, instance, "loop_limit")
