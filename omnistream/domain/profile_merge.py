"""Merging an anonymous (or other provisional) row into a known one: profile and journeys.

Precedence, the rule of each field:

* traits, addresses: the known side wins; the anonymous side fills keys the known side lacks
  (an address that bounced on either side is not brought back);
* consents: per channel and category, a refusal on either side wins, else a grant on either side
  (when two sides disagree we cannot tell which is newer, and sending without consent is the
  expensive mistake);
* engagement counters, order count/revenue, store visit count: summed (``additive`` only);
  last-activity timestamps: the later one; first_seen: the earlier one;
* cart: union by product id (same product: the larger quantity, the later ``added_at``),
  minus lines bought (by an order on either side) after they were added;
  viewed products: union by product id (the later view); both bounded, oldest dropped;
* orders: de-duplicated by ``order_id`` over the recent windows of both sides;
* push tokens, web push subscriptions: union, the known side's newest last.

``additive=False`` applies only the parts that are idempotent by themselves (unions, max/min,
fill-ins): ``identity.merge`` uses it when the same anonymous row is handed over a second time
(redelivery after a crash), so counters are never counted twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from omnistream.domain.commands import Command, Emit, ScheduleTimer
from omnistream.domain.profile_commerce import add_order
from omnistream.domain.profile_model import (
    MAX_CART_ITEMS,
    MAX_PUSH_TOKENS,
    MAX_STORES,
    MAX_TRAITS,
    MAX_VIEWED_PRODUCTS,
    Cart,
    ChannelEngagement,
    Orders,
    Profile,
    StoreVisits,
)
from omnistream.domain.state import CustomerState, Instance, Timer

__all__ = ["merge_profiles", "move_journeys"]

T = TypeVar("T")


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b < a) else a


def merge_profiles(known: Profile, anonymous: Profile, *, additive: bool = True) -> Profile:
    """The known profile with the anonymous one folded in (see the module doc for precedence)."""
    undeliverable = {**anonymous.undeliverable, **known.undeliverable}
    addresses = {
        channel: address
        for channel, address in {**anonymous.addresses, **known.addresses}.items()
        if address not in (known.undeliverable.get(channel), anonymous.undeliverable.get(channel))
    }
    traits = dict(known.traits)
    for key, value in anonymous.traits.items():
        if key not in traits and len(traits) < MAX_TRAITS:
            traits[key] = value
    update: dict[str, Any] = {
        "traits": traits,
        "addresses": addresses,
        "undeliverable": undeliverable,
        "consents": _consents(known.consents, anonymous.consents),
        "engagement": _engagement(known.engagement, anonymous.engagement, additive),
        "cart": _cart(known.cart, anonymous.cart, [known.orders, anonymous.orders]),
        "viewed_products": sorted(
            _union(
                [*anonymous.viewed_products, *known.viewed_products],
                key=lambda v: v.product_id,
                better=lambda new, old: new.viewed_at > old.viewed_at,
            ),
            key=lambda v: (v.viewed_at, v.product_id),
        )[-MAX_VIEWED_PRODUCTS:],
        "push_tokens": _dedup_last([*anonymous.push_tokens, *known.push_tokens])[-MAX_PUSH_TOKENS:],
        "web_push_subscriptions": list(
            {
                s.endpoint: s
                for s in [*anonymous.web_push_subscriptions, *known.web_push_subscriptions]
            }.values()
        )[-MAX_PUSH_TOKENS:],
        "first_seen": _earlier(known.first_seen, anonymous.first_seen),
        "last_seen": _later(known.last_seen, anonymous.last_seen),
    }
    if additive:
        update["orders"] = _orders(known.orders, anonymous.orders)
        update["store_visits"] = _visits(known.store_visits, anonymous.store_visits)
    return known.model_copy(update=update)


def _union(items: Iterable[T], key: Any, better: Any) -> list[T]:
    chosen: dict[Any, T] = {}
    for item in items:
        k = key(item)
        if k not in chosen or better(item, chosen[k]):
            chosen[k] = item
    return list(chosen.values())


def _dedup_last(items: list[str]) -> list[str]:
    """Keep each item once, at its last position."""
    seen: set[str] = set()
    out: list[str] = []
    for item in reversed(items):
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out[::-1]


def _consents(
    known: dict[str, dict[str, bool]], anonymous: dict[str, dict[str, bool]]
) -> dict[str, dict[str, bool]]:
    merged: dict[str, dict[str, bool]] = {}
    for channel in {*known, *anonymous}:
        a, b = known.get(channel, {}), anonymous.get(channel, {})
        merged[channel] = {
            category: not (a.get(category) is False or b.get(category) is False)
            for category in {*a, *b}
        }
    return merged


def _engagement(
    known: dict[str, ChannelEngagement], anonymous: dict[str, ChannelEngagement], additive: bool
) -> dict[str, ChannelEngagement]:
    merged = dict(known)
    for channel, theirs in anonymous.items():
        ours = known.get(channel)
        if ours is None:
            merged[channel] = theirs
            continue
        counts = {
            name: getattr(ours, name) + (getattr(theirs, name) if additive else 0)
            for name in ("sent", "delivered", "opened", "clicked", "bounced")
        }
        merged[channel] = ChannelEngagement(
            **counts,
            last_sent_at=_later(ours.last_sent_at, theirs.last_sent_at),
            last_engaged_at=_later(ours.last_engaged_at, theirs.last_engaged_at),
        )
    return merged


def _cart(known: Cart, anonymous: Cart, orders: list[Orders]) -> Cart:
    """Union of the lines, minus lines that an order on either side bought after adding them.

    The later ``added_at`` of a product wins: whether a line survives a purchase is monotone in
    it, so the result is the same in any merge order and when a merge is repeated.
    """
    items = dict(known.items)
    for pid, theirs in anonymous.items.items():
        ours = items.get(pid)
        if ours is None:
            items[pid] = theirs
        else:
            items[pid] = ours.model_copy(
                update={
                    "quantity": max(ours.quantity, theirs.quantity),
                    "added_at": max(ours.added_at, theirs.added_at),
                    "price": ours.price if ours.price is not None else theirs.price,
                    "name": ours.name or theirs.name,
                }
            )
    ordered = sorted(
        (
            i
            for i in items.values()
            if not any(o.bought_since(i.product_id, i.added_at) for o in orders)
        ),
        key=lambda i: (i.added_at, i.product_id),
    )
    return Cart(
        items={i.product_id: i for i in ordered[-MAX_CART_ITEMS:]},
        updated_at=_later(known.updated_at, anonymous.updated_at),
    )


def _orders(known: Orders, anonymous: Orders) -> Orders:
    """Known aggregates plus the anonymous orders the known side has not counted.

    Orders beyond the anonymous recent window cannot be compared by id; they are added as a
    remainder (they are older than any order in the window, so ``last_order_*`` is unaffected).
    """
    known_ids = {ref.order_id for ref in known.recent}
    merged = known
    for ref in anonymous.recent:
        if ref.order_id not in known_ids:
            merged = add_order(merged, ref)
    in_window = [r for r in anonymous.recent if r.currency in (None, anonymous.currency)]
    rest_count = anonymous.count - len(in_window)
    rest_revenue = anonymous.revenue - sum((r.total for r in in_window), Decimal(0))
    rest_other = anonymous.other_currency_count - (len(anonymous.recent) - len(in_window))
    if rest_count <= 0 and rest_other <= 0:
        return merged
    currency = merged.currency or anonymous.currency
    if anonymous.currency in (None, currency):
        return merged.model_copy(
            update={
                "currency": currency,
                "count": merged.count + max(rest_count, 0),
                "revenue": merged.revenue + max(rest_revenue, Decimal(0)),
                "other_currency_count": merged.other_currency_count + max(rest_other, 0),
            }
        )
    return merged.model_copy(
        update={
            "other_currency_count": merged.other_currency_count
            + max(rest_count, 0)
            + max(rest_other, 0)
        }
    )


def _visits(known: StoreVisits, anonymous: StoreVisits) -> StoreVisits:
    anonymous_later = _later(known.last_visit_at, anonymous.last_visit_at) != known.last_visit_at
    first, last = (known, anonymous) if anonymous_later else (anonymous, known)
    return StoreVisits(
        count=known.count + anonymous.count,
        last_visit_at=last.last_visit_at,
        last_store_id=last.last_store_id,
        stores=_dedup_last([*first.stores, *last.stores])[-MAX_STORES:],
    )


def move_journeys(
    known: CustomerState, anonymous: CustomerState
) -> tuple[dict[str, Instance], dict[str, Timer], list[Command], list[str], list[str]]:
    """Instances and timers of ``known`` after taking over the anonymous ones.

    Ids stay the same (in-flight outcomes and firings still match) unless they collide, then
    they get a suffix derived from the anonymous key; ``Instance.timer_id`` follows a renamed
    timer. Timers of no instance (time-based triggers) move unless ``known`` has that timer id.
    """
    suffix = "~" + hashlib.sha256(anonymous.key.encode()).hexdigest()[:8]
    instances, timers = dict(known.instances), dict(known.timers)
    live = {inst.journey_id for inst in known.instances.values()}
    commands: list[Command] = []
    moved: list[str] = []
    dropped: list[str] = []
    renamed: dict[str, str] = {}
    for old_id, inst in sorted(anonymous.instances.items()):
        if old_id in known.instances and known.instances[old_id].journey_id == inst.journey_id:
            continue  # moved by an earlier merge of the same row
        if inst.journey_id in live:
            dropped.append(old_id)
            commands.append(
                Emit(
                    name="journey_exited",
                    journey_id=inst.journey_id,
                    step_id=inst.step_id,
                    reason="merged_duplicate",
                    control=inst.control,
                )
            )
            continue
        renamed[old_id] = old_id if old_id not in instances else old_id + suffix
        live.add(inst.journey_id)
        moved.append(renamed[old_id])
    timer_names: dict[str, str] = {}
    for timer_id, timer in sorted(anonymous.timers.items()):
        if timer.instance_id:
            if timer.instance_id not in renamed:
                continue  # its instance was dropped (or is gone)
            owner = renamed[timer.instance_id]
            clash = timer_id in timers and timers[timer_id].instance_id != owner
        else:
            if timer_id in timers:
                continue
            owner, clash = "", False
        new_tid = timer_id + suffix if clash else timer_id
        timer_names[timer_id] = new_tid
        timers[new_tid] = timer.model_copy(update={"timer_id": new_tid, "instance_id": owner})
        commands.append(ScheduleTimer(customer_key=known.key, timer_id=new_tid, due=timer.due))
    for old_id, new_id in renamed.items():
        inst = anonymous.instances[old_id]
        changes: dict[str, Any] = {}
        if new_id != old_id:
            changes["instance_id"] = new_id
        timer_ref = getattr(inst, "timer_id", None)
        if isinstance(timer_ref, str) and timer_names.get(timer_ref, timer_ref) != timer_ref:
            changes["timer_id"] = timer_names[timer_ref]
        instances[new_id] = inst.model_copy(update=changes) if changes else inst
    return instances, timers, commands, moved, dropped
