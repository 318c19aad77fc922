"""The one ``timer_fired`` input, built alike by the worker's timer loop, the simulator and benches.

The engine finds the timer in the customer's row by ``timer_id`` (the row is the source of truth),
so the event carries only that id: the worker's timer index knows no instance id, and an event
that differed between the simulator and the worker would let goldens pass on input the worker
never produces. The event id is derived from the timer id, so a repeated firing is the same input.
"""

from __future__ import annotations

from datetime import datetime

from omnistream.domain.events import Event, key_fields
from omnistream.domain.vocabulary import SYSTEM_SOURCE, TIMER_FIRED

__all__ = ["timer_fired_event"]


def timer_fired_event(customer_key: str, timer_id: str, due: datetime) -> Event:
    """The input that fires ``timer_id`` of ``customer_key``, stamped with its due time."""
    return Event(
        event_id=f"timer:{timer_id}",
        type=TIMER_FIRED,
        source=SYSTEM_SOURCE,
        timestamp=due,
        properties={"timer_id": timer_id},
        **key_fields(customer_key),
    )
