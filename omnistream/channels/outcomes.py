"""Outcome events of the channel agents, produced to ``omni.customer-events``.

They use the ordinary event envelope (source ``omnistream``) keyed by the send's customer, so the
customer agent sees them in order with everything else about that customer. Ids are
deterministic (send id, type, chain position): a redelivered command yields the same ids, and
the customer agent's event-id dedup drops the repeats.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Final, Literal

from omnistream.domain.commands import Send
from omnistream.domain.events import Event, key_fields
from omnistream.domain.profile_events import DEAD_ADDRESS_REASONS
from omnistream.domain.vocabulary import SYSTEM_SOURCE
from omnistream.observability.metrics import M

__all__ = ["NO_FALLBACK", "OutcomeType", "not_delivered", "outcome_event"]

OutcomeType = Literal["message_sent", "message_failed", "message_suppressed", "message_fallback"]

NO_FALLBACK: Final = frozenset({"expired"})
"""Reasons that end the chain: an expired send would be just as late on the next channel."""

_SAFE_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+\-]{0,79}$")
_NAMESPACE: Final = uuid.UUID("0b8e4d6a-3c1f-4f43-9d51-5a6f0e7c2b19")


def _id_part(send_id: str) -> str:
    """The send id if it can sit in an event id, else a stable uuid5 of it."""
    return send_id if _SAFE_ID.match(send_id) else str(uuid.uuid5(_NAMESPACE, send_id))


def outcome_event(
    send: Send,
    type_: OutcomeType,
    now: datetime,
    provider: str,
    *,
    channel: str | None = None,
    **extra: Any,
) -> Event:
    """One outcome of ``send`` on its current channel. ``None`` values in ``extra`` are left out."""
    properties: dict[str, Any] = {
        "send_id": send.send_id,
        "journey_id": send.journey_id,
        "instance_id": send.instance_id,
        "step_id": send.step_id,
        "channel": channel if channel is not None else send.channel,
        "provider": provider,
        "category": send.category,
    }
    properties.update((name, value) for name, value in extra.items() if value is not None)
    return Event.model_validate(
        {
            "event_id": f"{_id_part(send.send_id)}.{type_}.{send.position}",
            "type": type_,
            "source": SYSTEM_SOURCE,
            "timestamp": now,
            "properties": properties,
            **key_fields(send.customer_key),
        }
    )


def not_delivered(
    send: Send,
    now: datetime,
    provider: str,
    kind: str,
    reason: str,
    error: str | None = None,
) -> tuple[list[Event], Send | None]:
    """Outcomes (and the forwarded send) of a send that did not go out on its channel.

    A provider failure is always reported as ``message_failed``; then, when the chain has a next
    channel, ``message_fallback`` (with the reason) and the forwarded send; otherwise a policy
    stop ends in ``message_suppressed``.
    """
    valid = 0 <= send.position < len(send.chain)
    channel = send.channel if valid else "none"
    outcomes: list[Event] = []
    if kind == "failed":
        # A dead address is named, so the profile drops exactly that one (not a newer one).
        dead = send.addresses.get(channel) if reason in DEAD_ADDRESS_REASONS else None
        outcomes.append(
            outcome_event(
                send,
                "message_failed",
                now,
                provider,
                channel=channel,
                reason=reason,
                error=error,
                address=dead,
            )
        )
    else:
        M.send_suppressed.labels(channel, reason).inc()
    nxt = send.next_channel if valid else None
    if nxt is not None and reason not in NO_FALLBACK:
        M.sends.labels(channel, provider, "fallback").inc()
        M.send_fallbacks.labels(channel, nxt, reason).inc()
        outcomes.append(
            outcome_event(send, "message_fallback", now, provider, reason=reason, to_channel=nxt)
        )
        return outcomes, send.fallen_back()
    if kind == "failed":
        M.sends.labels(channel, provider, "failed").inc()
    else:
        M.sends.labels(channel, provider, "suppressed").inc()
        outcomes.append(
            outcome_event(send, "message_suppressed", now, provider, channel=channel, reason=reason)
        )
    return outcomes, None
