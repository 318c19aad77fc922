"""Send steps: the channel chain, quiet hours, rendering, and the engagement fallback.

Two fallbacks exist and they are different things. *Delivery* fallback (no consent, capped,
provider error) belongs to the channel agent, which walks ``Send.chain`` itself. *Engagement*
fallback belongs here: the message was delivered but nobody opened or clicked it within the
author's duration, so the engine sends again on the next channel, as a new attempt with a new
``send_id`` (free push first, paid SMS only if nothing else worked).
"""

from __future__ import annotations

from typing import Literal

from omnistream.domain.commands import Message, Send, send_id_for
from omnistream.domain.profile import Profile
from omnistream.domain.state import Instance
from omnistream.journey.model import BEST, Journey, SendStep
from omnistream.journey.runner import Tx, exit_instance, park, run
from omnistream.journey.templates import TemplateError
from omnistream.policies.quiet_hours import next_allowed, zone

__all__ = ["Outcome", "deliver", "engagement_timeout", "resolve_chain", "start_send"]

Outcome = Literal["done", "parked", "exited"]


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


def _build(tx: Tx, journey: Journey, instance: Instance, step: SendStep) -> Send:
    ctx = tx.context(instance)
    messages = {}
    for channel in instance.chain:
        content = step.content[channel]
        messages[channel] = Message(
            subject=content.subject.render(ctx) if content.subject is not None else None,
            body=content.body.render(ctx),
            data={k: v.render(ctx) for k, v in content.data.items()},
        )
    profile = tx.state.profile
    return Send(
        send_id=send_id_for(
            journey.id,
            instance.instance_id,
            step.id,
            instance.attempt,
            customer_key=tx.state.key,
        ),
        customer_key=tx.state.key,
        journey_id=journey.id,
        journey_version=journey.version,
        instance_id=instance.instance_id,
        step_id=step.id,
        chain=instance.chain,
        position=instance.position,
        category=step.category,
        messages=messages,
        addresses={c: profile.addresses[c] for c in instance.chain if c in profile.addresses},
        consents={c: profile.consents_to(c, step.category) for c in instance.chain},
        not_after=tx.now + step.expires if step.expires is not None else None,
        caused_by=tx.event.event_id,
        caused_at=tx.event.timestamp,
    )


def deliver(
    tx: Tx, journey: Journey, instance: Instance, step: SendStep
) -> tuple[Outcome, Instance]:
    """Send the current attempt now, or park until quiet hours end (marketing only)."""
    if step.category == "marketing":
        policies = tx.policies(journey.id)
        tz = zone(tx.state.profile.timezone, policies.default_timezone)
        allowed = next_allowed(tx.now, tz, policies.quiet_hours, policies.send_window)
        if allowed > tx.now:
            tx.emit("journey_step", instance, step_id=step.id, attributes={"held": "quiet_hours"})
            return "parked", park(tx, instance, "quiet", allowed)
    attributes: dict[str, object] = {"attempt": instance.attempt, "position": instance.position}
    if not instance.control:
        try:
            send = _build(tx, journey, instance, step)
        except TemplateError as exc:
            exit_instance(tx, instance, "template_error", error=exc.message)
            return "exited", instance
        tx.commands.append(send)
        attributes["send_id"] = send.send_id
        instance = instance.model_copy(update={"send_ids": (*instance.send_ids, send.send_id)})
        tx.put_instance(instance)
    tx.emit("journey_step", instance, step_id=step.id, attributes=attributes)
    if step.engagement_fallback is not None:
        due = tx.now + step.engagement_fallback.within
        return "parked", park(tx, instance, "engage", due)
    return "done", instance


def start_send(
    tx: Tx, journey: Journey, instance: Instance, step: SendStep
) -> tuple[Outcome, Instance]:
    chain = resolve_chain(step.channels, tx.state.profile)
    if not chain:  # only 'best' entries and nothing engaged: impossible after validation
        chain = tuple(c for c in step.channels if c != BEST)
    instance = instance.model_copy(update={"chain": chain, "attempt": 0, "position": 0})
    return deliver(tx, journey, instance, step)


def engagement_timeout(tx: Tx, journey: Journey, instance: Instance, step: SendStep) -> None:
    """No engagement in time: try the next channel after the one last used, or move on."""
    position = instance.position + 1
    if position < len(instance.chain):
        instance = instance.model_copy(
            update={"attempt": instance.attempt + 1, "position": position}
        )
        outcome, instance = deliver(tx, journey, instance, step)
        if outcome != "done":
            return
    nxt = journey.step_by_id(step.next) if step.next is not None else None
    run(tx, journey, instance, nxt)
