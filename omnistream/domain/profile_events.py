"""Handlers for the profile event vocabulary: one small pure function per event type.

A handler gets the old profile, the event and a list to append issues to, and returns the
fields to replace (``model_copy(update=...)``); it never edits the old profile's containers.
A property with a bad shape is skipped and reported as an issue (``"<type>.<field>"``, never
the value: values may be contact details), and the rest of the event still applies.
The vocabulary itself is documented in ``docs/identity.md`` and in ``profile.VOCABULARY``;
commerce events (products, cart, orders, stores) are in ``profile_commerce.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson

from omnistream.domain.events import Event
from omnistream.domain.profile_commerce import COMMERCE_HANDLERS
from omnistream.domain.profile_model import (
    MAX_PUSH_TOKENS,
    MAX_TRAITS,
    ChannelEngagement,
    Profile,
    WebPushSubscription,
)
from omnistream.domain.profile_values import (
    CATEGORIES,
    as_channel,
    as_date,
    as_id,
    as_locale,
    as_text,
    as_timezone,
    is_scalar,
    normalize_email,
    normalize_phone,
)

__all__ = ["DEAD_ADDRESS_REASONS", "HANDLERS", "OUTCOME_TYPES", "Handler", "Update"]

Update = dict[str, Any]
Handler = Callable[[Profile, Event, list[str]], Update]

OUTCOME_TYPES: Final = frozenset(
    {
        "message_sent",
        "message_delivered",
        "message_opened",
        "message_clicked",
        "message_bounced",
        "message_unsubscribed",
        "message_failed",
    }
)
"""Send outcomes: accepted only from source ``omnistream`` (providers' webhooks are verified and
re-emitted by omnistream), so an external producer cannot forge engagement or bounces."""

DEAD_ADDRESS_REASONS: Final = frozenset(
    {"token_unregistered", "address_invalid", "subscription_gone"}
)
"""Permanent ``message_failed`` reasons that condemn the address itself (the provider says it
will never work: an unregistered push token, a gone web push subscription, no such mailbox or
chat). The failure names the address; the profile drops it as after a hard bounce, so the next
send skips that channel instead of failing on it again."""

_TRAIT_KEY_MAX = 64


# ---------------------------------------------------------------- traits and addresses


def _set_address(
    profile: Profile, addresses: dict[str, str], channel: str, address: str | None
) -> None:
    """Point ``channel`` at ``address`` (``None`` removes it) unless it is the bounced one."""
    if address is None:
        addresses.pop(channel, None)
    elif profile.undeliverable.get(channel) != address:
        addresses[channel] = address


def _traits(profile: Profile, event: Event, issues: list[str]) -> Update:
    raw = event.properties.get("traits")
    if not isinstance(raw, dict):
        if raw is not None:
            issues.append(f"{event.type}.traits")
        return {}
    traits = dict(profile.traits)
    addresses = dict(profile.addresses)
    for key, value in raw.items():
        where = f"{event.type}.traits.{key}" if len(key) <= _TRAIT_KEY_MAX else event.type
        clean: Any
        if key == "email":
            clean = None if value is None else normalize_email(value)
            if value is not None and clean is None:
                issues.append(where)
                continue
            _set_address(profile, addresses, "email", clean)
        elif key == "phone":
            clean = None if value is None else normalize_phone(value)
            if value is not None and clean is None:
                issues.append(where)
                continue
            _set_address(profile, addresses, "sms", clean)
        elif key in ("timezone", "locale", "birthday", "first_name", "last_name", "name"):
            parse = {"timezone": as_timezone, "locale": as_locale, "birthday": as_date}.get(
                key, as_text
            )
            clean = None if value is None else parse(value)
            if value is not None and clean is None:
                issues.append(where)
                continue
        elif not key or len(key) > _TRAIT_KEY_MAX or not key.isprintable():
            issues.append(where)
            continue
        elif is_scalar(value):
            clean = value
        elif isinstance(value, list) and len(value) <= 50 and all(map(is_scalar, value)):
            clean = list(value)
        else:
            issues.append(where)
            continue
        if clean is None:
            traits.pop(key, None)
        elif key in traits or len(traits) < MAX_TRAITS:
            traits[key] = clean
        else:
            issues.append(f"{event.type}.traits:limit")
    return {"traits": traits, "addresses": addresses}


def _consent(profile: Profile, event: Event, issues: list[str]) -> Update:
    props = event.properties
    channel = as_channel(props.get("channel"))
    category = props.get("category")
    granted = props.get("granted")
    if channel is None or category not in CATEGORIES or not isinstance(granted, bool):
        issues.append(f"{event.type}.shape")
        return {}
    consents = dict(profile.consents)
    consents[channel] = {**consents.get(channel, {}), str(category): granted}
    return {"consents": consents}


def _push_token(profile: Profile, event: Event, issues: list[str]) -> Update:
    token = as_text(event.properties.get("token"), max_len=1024)
    if token is None:
        issues.append(f"{event.type}.token")
        return {}
    tokens = [t for t in profile.push_tokens if t != token] + [token]
    undeliverable = {k: v for k, v in profile.undeliverable.items() if k != "mobile_push"}
    return {
        "push_tokens": tokens[-MAX_PUSH_TOKENS:],
        "addresses": {**profile.addresses, "mobile_push": token},
        "undeliverable": undeliverable,
    }


def _web_push(profile: Profile, event: Event, issues: list[str]) -> Update:
    props = event.properties
    endpoint = as_text(props.get("endpoint"), max_len=1024)
    keys = props.get("keys")
    p256dh = as_text(keys.get("p256dh"), 256) if isinstance(keys, dict) else None
    auth = as_text(keys.get("auth"), 256) if isinstance(keys, dict) else None
    if endpoint is None or not endpoint.startswith("https://") or not p256dh or not auth:
        issues.append(f"{event.type}.shape")
        return {}
    sub = WebPushSubscription(
        endpoint=endpoint, p256dh=p256dh, auth=auth, subscribed_at=event.timestamp
    )
    subs = [s for s in profile.web_push_subscriptions if s.endpoint != endpoint] + [sub]
    undeliverable = {k: v for k, v in profile.undeliverable.items() if k != "web_push"}
    return {
        "web_push_subscriptions": subs[-MAX_PUSH_TOKENS:],
        "addresses": {**profile.addresses, "web_push": endpoint},
        "undeliverable": undeliverable,
    }


def _messenger(channel: str, field: str) -> Handler:
    def handle(profile: Profile, event: Event, issues: list[str]) -> Update:
        address = as_id(event.properties.get(field))
        if address is None:
            issues.append(f"{event.type}.{field}")
            return {}
        undeliverable = {k: v for k, v in profile.undeliverable.items() if k != channel}
        return {
            "addresses": {**profile.addresses, channel: address},
            "undeliverable": undeliverable,
        }

    return handle


# ---------------------------------------------------------------- send outcomes


def _outcome(profile: Profile, event: Event, issues: list[str]) -> Update:
    channel = as_channel(event.properties.get("channel"))
    if channel is None:
        issues.append(f"{event.type}.channel")
        return {}
    kind = event.type.removeprefix("message_")
    stats = profile.engagement.get(channel) or ChannelEngagement()
    at = event.timestamp
    changes: dict[str, Any] = {}
    update: Update = {}
    if kind in ("sent", "delivered", "opened", "clicked", "bounced"):
        changes[kind] = getattr(stats, kind) + 1
    if kind == "sent" and (stats.last_sent_at is None or at > stats.last_sent_at):
        changes["last_sent_at"] = at
    if kind in ("opened", "clicked") and (
        stats.last_engaged_at is None or at > stats.last_engaged_at
    ):
        changes["last_engaged_at"] = at
    if kind == "unsubscribed":
        consents = dict(profile.consents)
        consents[channel] = {**consents.get(channel, {}), "marketing": False}
        update["consents"] = consents
    if kind == "bounced" and event.properties.get("permanent", True) is not False:
        update |= _bounce(profile, channel, event.properties.get("address"))
    if changes:
        update["engagement"] = {**profile.engagement, channel: stats.model_copy(update=changes)}
    return update


def _failed(profile: Profile, event: Event, issues: list[str]) -> Update:
    """A permanent failure that condemns the address drops the address (or token) it names."""
    props = event.properties
    if props.get("reason") not in DEAD_ADDRESS_REASONS:
        return {}
    channel = as_channel(props.get("channel"))
    address = _sent_address(channel, props.get("address"))
    if channel is None or address is None:
        issues.append(f"{event.type}.address")
        return {}
    return _bounce(profile, channel, address)


def _sent_address(channel: str | None, address: object) -> str | None:
    """The profile's address from the one a send carried: a web push send carries the whole
    subscription (``Profile.send_address``), the profile keeps its endpoint."""
    if not isinstance(address, str) or not address:
        return None
    if channel != "web_push" or not address.startswith("{"):
        return address
    try:
        endpoint = orjson.loads(address).get("endpoint")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return endpoint if isinstance(endpoint, str) and endpoint else None


def _bounce(profile: Profile, channel: str, reported: object) -> Update:
    """Hard bounce: drop the address (or the one token) it names, remember it as undeliverable."""
    current = profile.addresses.get(channel)
    address = reported if isinstance(reported, str) and reported else current
    if address is None:
        return {}
    update: Update = {"undeliverable": {**profile.undeliverable, channel: address}}
    addresses = dict(profile.addresses)
    if channel == "mobile_push":
        tokens = [t for t in profile.push_tokens if t != address]
        update["push_tokens"] = tokens
        fallback: str | None = tokens[-1] if tokens else None
    elif channel == "web_push":
        subs = [s for s in profile.web_push_subscriptions if s.endpoint != address]
        update["web_push_subscriptions"] = subs
        fallback = subs[-1].endpoint if subs else None
    else:
        fallback = None
    if current == address:
        if fallback is None:
            addresses.pop(channel, None)
        else:
            addresses[channel] = fallback
    update["addresses"] = addresses
    return update


HANDLERS: Final[dict[str, Handler]] = {
    "identify": _traits,
    "signed_up": _traits,
    "profile_updated": _traits,
    "consent_updated": _consent,
    "push_token_registered": _push_token,
    "web_push_subscribed": _web_push,
    "telegram_linked": _messenger("telegram", "chat_id"),
    "viber_linked": _messenger("viber", "viber_id"),
    **COMMERCE_HANDLERS,
    **dict.fromkeys(OUTCOME_TYPES, _outcome),
    "message_failed": _failed,
}
