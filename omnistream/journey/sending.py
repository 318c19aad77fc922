"""Send steps: the channel chain, quiet hours, rendering, outcomes and the engagement fallback.

Two fallbacks exist and they are different things. *Delivery* fallback (no consent, capped,
provider error) belongs to the channel agent, which walks ``Send.chain`` itself within one
attempt (one ``send_id``). *Engagement* fallback belongs here: the message was sent but nobody
opened or clicked it within the channel's window, or a receipt says it bounced, so the engine
sends again on the next channel, as a new attempt with a new ``send_id`` (free push first, paid
SMS only if nothing else worked). The ordering rules between the two are in docs/journeys.md
("Send outcomes").

A send step ends in exactly one outcome, which picks its edge (``SendStep.edge``): ``sent``
(no engagement window: the channel agent sent it), ``opened`` / ``clicked`` (engagement with any
of the step's sends), ``failed`` (the last channel tried could not deliver), ``no_engagement``
(the last channel's window passed) or ``no_outcome`` (the channel agent never answered).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final, Literal

from omnistream.domain.commands import Message, Send, send_id_for
from omnistream.domain.profile import Profile
from omnistream.domain.state import Instance
from omnistream.journey.model import BEST, Journey, SendStep
from omnistream.journey.runner import Tx, exit_instance, park, run
from omnistream.journey.templates import TemplateError
from omnistream.policies.quiet_hours import next_allowed, zone

__all__ = [
    "DELIVERY_OUTCOMES",
    "OUTCOME_WAIT",
    "Outcome",
    "deliver",
    "engagement_timeout",
    "finish",
    "on_delivery_outcome",
    "resolve_chain",
    "start_send",
]

Outcome = Literal["done", "parked", "exited"]

OUTCOME_WAIT: Final = timedelta(hours=1)
"""How long a step with ``on_sent`` / ``on_failed`` and no engagement window waits for the
channel agent's answer before it follows ``next`` (outcome ``no_outcome``)."""

DELIVERY_OUTCOMES: Final = frozenset(
    {
        "message_sent",
        "message_fallback",
        "message_failed",
        "message_suppressed",
        "message_bounced",
        "message_delivery_failed",
    }
)
"""Channel-agent outcomes and provider receipts that move a waiting send step."""

_RECEIPT_FAILURES: Final = frozenset({"message_bounced", "message_delivery_failed"})


def resolve_chain(entries: tuple[str, ...], profile: Profile) -> tuple[str, ...]:
    """Expand ``best``: the most engaged channel among the entries after it, then the rest."""
    chain: list[str] = []
    for i, entry in enumerate(entries):
        if entry == BEST:
            rest = [c for c in entries[i + 1 :] if c != BEST and c not in chain]
            pick = profile.preferred_channel(rest)
            if pick is not None:
                chain.append(pick)
        elif entry not in chain:
            chain.append(entry)
    return tuple(chain)


def _build(
    tx: Tx,
    journey: Journey,
    instance: Instance,
    step: SendStep,
    chain: tuple[str, ...],
    **ids: Any,
) -> Send:
    """One ``Send`` over ``chain``; ``ids`` are ``send_id``, ``position`` and ``touch_id``."""
    ctx = tx.context(instance)
    messages = {}
    for channel in chain:
        content = step.content[channel]
        messages[channel] = Message(
            subject=content.subject.render(ctx) if content.subject is not None else None,
            body=content.body.render(ctx),
            data={k: v.render(ctx) for k, v in content.data.items()},
        )
    profile = tx.state.profile
    return Send(
        customer_key=tx.state.key,
        journey_id=journey.id,
        journey_version=journey.version,
        instance_id=instance.instance_id,
        step_id=step.id,
        chain=chain,
        category=step.category,
        messages=messages,
        addresses={c: a for c in chain if (a := profile.send_address(c)) is not None},
        consents={c: profile.consents_to(c, step.category) for c in chain},
        not_after=tx.now + step.expires if step.expires is not None else None,
        caused_by=tx.event.event_id,
        caused_at=tx.event.timestamp,
        **ids,
    )


def _send_id(tx: Tx, journey: Journey, instance: Instance, step_id: str) -> str:
    return send_id_for(
        journey.id, instance.instance_id, step_id, instance.attempt, customer_key=tx.state.key
    )


def _sends(tx: Tx, journey: Journey, instance: Instance, step: SendStep) -> list[Send]:
    """The attempt's commands: one over the chain, or one per channel sharing a touch id."""
    if not step.together:
        send_id = _send_id(tx, journey, instance, step.id)
        return [
            _build(
                tx,
                journey,
                instance,
                step,
                instance.chain,
                send_id=send_id,
                position=instance.position,
            )
        ]
    touch = _send_id(tx, journey, instance, step.id)
    return [
        _build(
            tx,
            journey,
            instance,
            step,
            (channel,),
            send_id=_send_id(tx, journey, instance, f"{step.id}/{channel}"),
            touch_id=touch,
        )
        for channel in instance.chain
    ]


def _held(tx: Tx, journey: Journey, instance: Instance, step: SendStep) -> Instance | None:
    """Park a marketing send until quiet hours / the send window allow it (None: send now)."""
    if step.category != "marketing":
        return None
    policies = tx.policies(journey.id)
    tz = zone(tx.state.profile.timezone, policies.default_timezone)
    allowed = next_allowed(tx.now, tz, policies.quiet_hours, policies.send_window)
    if allowed <= tx.now:
        return None
    tx.emit("journey_step", instance, step_id=step.id, attributes={"held": "quiet_hours"})
    return park(tx, instance, "quiet", allowed)


def deliver(
    tx: Tx, journey: Journey, instance: Instance, step: SendStep
) -> tuple[Outcome, Instance]:
    """Send the current attempt now, or park until quiet hours end (marketing only)."""
    held = _held(tx, journey, instance, step)
    if held is not None:
        return "parked", held
    attributes: dict[str, object] = {"attempt": instance.attempt, "position": instance.position}
    if not instance.control:
        try:
            commands = _sends(tx, journey, instance, step)
        except TemplateError as exc:
            exit_instance(tx, instance, "template_error", error=exc.message)
            return "exited", instance
        tx.commands.extend(commands)
        ids = tuple(send.send_id for send in commands)
        attributes["send_id"] = ids[0]
        if commands[0].touch_id is not None:
            attributes["touch_id"] = commands[0].touch_id
        instance = instance.model_copy(update={"send_ids": (*instance.send_ids, *ids)})
        tx.put_instance(instance)
    tx.emit("journey_step", instance, step_id=step.id, attributes=attributes)
    fallback = step.engagement_fallback
    if fallback is not None:
        due = tx.now + fallback.window(instance.chain[instance.position])
        return "parked", park(tx, instance, "engage", due)
    if step.waits and not instance.control:
        return "parked", park(tx, instance, "outcome", tx.now + OUTCOME_WAIT)
    return "done", instance


def start_send(
    tx: Tx, journey: Journey, instance: Instance, step: SendStep
) -> tuple[Outcome, Instance]:
    chain = resolve_chain(step.channels, tx.state.profile)
    if not chain:  # only 'best' entries and nothing engaged: impossible after validation
        chain = tuple(c for c in step.channels if c != BEST)
    instance = instance.model_copy(update={"chain": chain, "attempt": 0, "position": 0})
    return deliver(tx, journey, instance, step)


def _next_attempt(
    tx: Tx, journey: Journey, instance: Instance, step: SendStep, position: int
) -> None:
    """Engagement fallback: a new attempt (new send id) from ``position`` of the chain."""
    instance = instance.model_copy(update={"attempt": instance.attempt + 1, "position": position})
    outcome, instance = deliver(tx, journey, instance, step)
    if outcome == "done":  # unreachable: a step with a fallback always parks
        run(tx, journey, instance, _target(journey, step.next))


def _target(journey: Journey, step_id: str | None) -> Any:
    return journey.step_by_id(step_id) if step_id is not None else None


def finish(tx: Tx, journey: Journey, instance: Instance, step: SendStep, outcome: str) -> None:
    """End the send step with ``outcome`` and follow its edge."""
    if instance.timer_id is not None:
        tx.cancel_timer(instance.timer_id)
        instance = instance.model_copy(update={"timer_id": None})
        tx.put_instance(instance)
    reason = {
        "outcome": outcome,
        "event": tx.event.type,
        "reason": tx.event.properties.get("reason"),
    }
    attributes = {k: v for k, v in reason.items() if v is not None}
    tx.emit("journey_step", instance, step_id=step.id, attributes=attributes)
    run(tx, journey, instance, _target(journey, step.edge(outcome)))


def engagement_timeout(tx: Tx, journey: Journey, instance: Instance, step: SendStep) -> None:
    """No engagement in the channel's window: the next channel after the one used, or on."""
    position = instance.position + 1
    if position < len(instance.chain):
        _next_attempt(tx, journey, instance, step, position)
    else:
        finish(tx, journey, instance, step, "no_engagement")


def on_delivery_outcome(tx: Tx, journey: Journey, instance: Instance, step: SendStep) -> None:
    """A channel-agent outcome or a receipt for one of the step's sends, while it waits.

    Only the current attempt's outcomes count: a bounce of the push after the email already went
    out changes nothing. The rules, in order, are those of docs/journeys.md "Send outcomes".
    """
    props, kind = tx.event.properties, tx.event.type
    if not instance.send_ids or props.get("send_id") != instance.send_ids[-1]:
        return
    timer = tx.state.timers.get(instance.timer_id or "")
    if timer is None or timer.purpose not in ("engage", "outcome"):
        return  # held for quiet hours: the next attempt is already on its way
    if kind == "message_fallback":
        _moved(tx, journey, instance, step, props.get("to_channel"))
    elif kind == "message_sent":
        instance = _moved(tx, journey, instance, step, props.get("channel"))
        if step.engagement_fallback is None:
            finish(tx, journey, instance, step, "sent")
    elif kind == "message_failed":
        if props.get("channel") in instance.chain[:-1]:
            return  # not the last channel: the agent's message_fallback follows
        finish(tx, journey, instance, step, "failed")
    elif kind == "message_suppressed":
        finish(tx, journey, instance, step, "failed")  # end of the chain, or expired
    elif kind in _RECEIPT_FAILURES:
        _receipt_failure(tx, journey, instance, step)


def _moved(tx: Tx, journey: Journey, instance: Instance, step: SendStep, channel: Any) -> Instance:
    """The agent used a later channel of the chain: track it; its own window starts now."""
    if channel not in instance.chain:
        return instance
    position = instance.chain.index(channel)
    if position <= instance.position:
        return instance
    instance = instance.model_copy(update={"position": position})
    tx.put_instance(instance)
    fallback = step.engagement_fallback
    if fallback is not None and instance.timer_id is not None:
        if tx.state.timers[instance.timer_id].purpose == "engage":
            instance = park(tx, instance, "engage", tx.now + fallback.window(channel))
    return instance


def _receipt_failure(tx: Tx, journey: Journey, instance: Instance, step: SendStep) -> None:
    """A bounce or delivery failure reported later: fall back at once, or end as ``failed``."""
    channel = tx.event.properties.get("channel")
    used = instance.chain.index(channel) if channel in instance.chain else instance.position
    if step.engagement_fallback is not None and used + 1 < len(instance.chain):
        tx.cancel_timer(instance.timer_id or "")
        instance = instance.model_copy(update={"timer_id": None})
        tx.put_instance(instance)
        _next_attempt(tx, journey, instance, step, used + 1)
    else:
        finish(tx, journey, instance, step, "failed")
