"""The unified customer profile and how one event changes it.

``apply_event`` is a pure function of (profile, event): every channel's events land here, so
every channel knows what the others did. It runs once per event on the hot path, so it copies
only what the event changes (an event that changes nothing returns the very same object) and
it never raises on a well-formed envelope: properties with a bad shape are skipped, the rest of
the event applies, and ``apply_event_with_issues`` says what was skipped (for a metric; the
issue strings name fields, never values, because values can be contact details).

The models live in ``profile_model.py`` and the per-type handlers in ``profile_events.py``;
this module is the public face the engine and the runtime import.
"""

from __future__ import annotations

from typing import Any, Final

from omnistream.domain.events import Event
from omnistream.domain.profile_events import HANDLERS, OUTCOME_TYPES
from omnistream.domain.profile_model import (
    MAX_CART_ITEMS,
    MAX_RECENT_ORDERS,
    MAX_VIEWED_PRODUCTS,
    PREFERRED_RECENCY,
    Cart,
    CartItem,
    ChannelEngagement,
    OrderRef,
    Orders,
    Profile,
    StoreVisits,
    ViewedProduct,
    WebPushSubscription,
)
from omnistream.domain.vocabulary import SYSTEM_SOURCE

__all__ = [
    "MAX_CART_ITEMS",
    "MAX_RECENT_ORDERS",
    "MAX_VIEWED_PRODUCTS",
    "OUTCOME_TYPES",
    "PREFERRED_RECENCY",
    "VOCABULARY",
    "Cart",
    "CartItem",
    "ChannelEngagement",
    "OrderRef",
    "Orders",
    "Profile",
    "StoreVisits",
    "ViewedProduct",
    "WebPushSubscription",
    "apply_event",
    "apply_event_with_issues",
]

VOCABULARY: Final[dict[str, str]] = {
    "identify": "traits: {email, phone, first_name, last_name, name, locale, timezone, "
    "birthday (YYYY-MM-DD), <custom>: scalar | list of scalars | null (removes)}",
    "signed_up": "same as identify",
    "profile_updated": "same as identify",
    "consent_updated": "channel, category (marketing|transactional), granted: bool",
    "push_token_registered": "token",
    "web_push_subscribed": "endpoint (https URL), keys: {p256dh, auth}",
    "telegram_linked": "chat_id",
    "viber_linked": "viber_id",
    "product_viewed": "product_id, name?, category?, price?",
    "cart_updated": "items: [{product_id, quantity? (1), price?, name?}] (replaces the cart)",
    "product_added_to_cart": "product_id, quantity? (1), price?, name?",
    "product_removed_from_cart": "product_id, quantity? (all)",
    "cart_cleared": "-",
    "order_placed": "order_id, total, currency?, items?: [{product_id, ...}] (once per order_id)",
    "store_visited": "store_id",
    "message_sent": "channel (source omnistream only)",
    "message_delivered": "channel (source omnistream only)",
    "message_opened": "channel (source omnistream only)",
    "message_clicked": "channel (source omnistream only)",
    "message_bounced": "channel, address?, permanent? (true) (source omnistream only)",
    "message_unsubscribed": "channel: revokes marketing consent (source omnistream only)",
    "message_failed": (
        "channel, reason, address?: token_unregistered / subscription_gone / address_invalid "
        "drop the address named (source omnistream only)"
    ),
}
"""Event type -> the properties it reads. Any other type only moves first_seen/last_seen."""

_SYSTEM_ACTIVITY: Final = frozenset({"message_opened", "message_clicked", "message_unsubscribed"})
"""Outcomes that are the customer's own activity. Other system events (sent, delivered, timer
firings) do not move ``last_seen``: a lapsed-customer rule must not see our own sends as visits."""


def apply_event(profile: Profile, event: Event) -> Profile:
    """Return the profile after ``event``; the input is never mutated.

    The result may share unchanged sub-objects with the input: treat both as immutable.
    """
    return apply_event_with_issues(profile, event)[0]


def apply_event_with_issues(profile: Profile, event: Event) -> tuple[Profile, list[str]]:
    """``apply_event`` plus the skipped parts of the event, e.g. ``["order_placed.shape"]``."""
    issues: list[str] = []
    update: dict[str, Any] = {}
    handler = HANDLERS.get(event.type)
    if handler is not None:
        if event.type in OUTCOME_TYPES and event.source != SYSTEM_SOURCE:
            issues.append(f"{event.type}.source")
        else:
            update = handler(profile, event, issues)
    if event.source != SYSTEM_SOURCE or event.type in _SYSTEM_ACTIVITY:
        at = event.timestamp
        if profile.first_seen is None or at < profile.first_seen:
            update["first_seen"] = at
        if profile.last_seen is None or at > profile.last_seen:
            update["last_seen"] = at
    if not update:
        return profile, issues
    return profile.model_copy(update=update), issues
