"""A send step's messages rendered for one customer, as the worker would render them. Pure.

The worker renders a send's templates with ``Tx.context`` (profile, the instance's trigger and
vars, the journey, now) and the sandboxed Liquid templates the loader compiled
(``journey/templates.py``); the preview calls the same two, so what the operator sees is what
the customer would get. A customer with a live instance of the journey is previewed with that
instance (its trigger and vars); otherwise with an empty one (``trigger`` and ``vars`` empty).

``outgoing_for_test`` turns one rendered channel into a provider call to an address the operator
types: marked as a test (``send_id`` ``console-test-...``, subject prefixed ``[TEST]``), and no
journey state is read back or written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from omnistream.domain.commands import Message
from omnistream.domain.events import Event, key_fields
from omnistream.domain.state import CustomerState, Instance
from omnistream.domain.vocabulary import SYSTEM_SOURCE
from omnistream.journey.model import Catalog, Journey, SendStep
from omnistream.journey.runner import Tx
from omnistream.journey.templates import TemplateError
from omnistream.ports import Outgoing

__all__ = ["TEST_PREFIX", "Rendered", "outgoing_for_test", "preview_instance", "render_step"]

TEST_PREFIX: Final = "console-test-"
TEST_SUBJECT: Final = "[TEST] "


@dataclass(frozen=True)
class Rendered:
    """One channel's message, or why its templates failed (as the worker would exit)."""

    channel: str
    message: Message | None
    error: str | None = None


def preview_instance(
    journey: Journey, step: SendStep, state: CustomerState, now: datetime
) -> Instance:
    """The customer's live instance of ``journey`` (the earliest), or an empty stand-in."""
    live = sorted(
        (i for i in state.instances.values() if i.journey_id == journey.id),
        key=lambda i: i.entered_at,
    )
    if live:
        return live[0]
    return Instance(
        instance_id="console-preview",
        journey_id=journey.id,
        version=journey.version,
        step_id=step.id,
        entered_at=now,
    )


def render_step(
    catalog: Catalog, journey: Journey, step: SendStep, state: CustomerState, now: datetime
) -> list[Rendered]:
    """Every channel of the step with content, rendered for ``state``'s customer."""
    event = Event(
        event_id="console-preview",
        type="console_preview",
        source=SYSTEM_SOURCE,
        timestamp=now,
        **key_fields(state.key),
    )
    context = Tx(catalog, state, event, now).context(preview_instance(journey, step, state, now))
    out = []
    for channel, content in step.content.items():
        try:
            message = Message(
                subject=content.subject.render(context) if content.subject is not None else None,
                body=content.body.render(context),
                data={k: v.render(context) for k, v in content.data.items()},
            )
        except TemplateError as exc:
            out.append(Rendered(channel, None, exc.message))
            continue
        out.append(Rendered(channel, message))
    return out


def outgoing_for_test(
    rendered: Rendered, customer_key: str, address: str, journey: Journey, step: SendStep
) -> Outgoing:
    """The provider call of a test send (``rendered.message`` must be set)."""
    assert rendered.message is not None
    message = rendered.message
    if message.subject is not None:
        message = message.model_copy(update={"subject": TEST_SUBJECT + message.subject})
    return Outgoing(
        send_id=f"{TEST_PREFIX}{uuid.uuid4().hex}",
        customer_key=customer_key,
        channel=rendered.channel,
        address=address,
        message=message,
        category=step.category,
        journey_id=journey.id,
        step_id=step.id,
    )
