"""What only omnistream may say: its own source name and the event types it produces itself.

Timer firings, send outcomes and erasure requests travel on ``omni.customer-events`` with the
source ``omnistream``. A backend producer that could write them to a source topic could move a
journey on at once, raise engagement, withdraw consent or erase a customer, so ingest refuses
them there (``is_reserved`` / DLQ reason ``reserved``; docs/security.md). Pure: no imports.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BROADCAST_DUE",
    "CHANNELS",
    "FORGET_EVENT",
    "OUTCOME_PREFIX",
    "RESERVED_KEY_PREFIXES",
    "SOURCES",
    "SYSTEM_EVENT_TYPES",
    "SYSTEM_SOURCE",
    "TIMER_FIRED",
    "is_system_event_type",
]

SYSTEM_SOURCE: Final = "omnistream"
"""The ``source`` of every event omnistream produces itself."""

SOURCES: Final = ("site", "app", "crm", "store")
"""Backend sources; each has an ``omni.events.<source>`` topic that producers may write."""

CHANNELS: Final = ("email", "sms", "mobile_push", "web_push", "viber", "telegram", "app_inbox")
"""Every channel omnistream sends on; each has an ``omni.send.<channel>`` topic and agent."""

TIMER_FIRED: Final = "timer_fired"
"""A journey wait that came due (``runtime/timers.py``)."""

FORGET_EVENT: Final = "forget_customer"
"""A right-to-erasure request (``omnistream customers forget``)."""

OUTCOME_PREFIX: Final = "message_"
"""Send outcomes and provider receipts: ``message_sent``, ``message_opened``, ``message_bounced``,
``message_unsubscribed`` ... The whole namespace is reserved, so a new outcome is covered too."""

BROADCAST_DUE: Final = "broadcast_due"
"""One customer's turn in a scheduled broadcast occurrence (``runtime/broadcasts.py``): the
engine arms the customer's local-time entry. Forged, it would enter anyone into a broadcast."""

SYSTEM_EVENT_TYPES: Final = frozenset({TIMER_FIRED, FORGET_EVENT, BROADCAST_DUE})
"""System event types outside the outcome namespace."""

RESERVED_KEY_PREFIXES: Final = ("anon:", "email:", "phone:", "crm:")
"""Prefixes of provisional row keys (``domain/identity.py``); never a producer's customer id."""


def is_system_event_type(event_type: str) -> bool:
    """Whether ``event_type`` is one that only omnistream may produce."""
    return event_type in SYSTEM_EVENT_TYPES or event_type.startswith(OUTCOME_PREFIX)
