"""Handlers of the commerce events: products viewed, the cart, orders and store visits.

Same contract as ``profile_events``: pure, copy on write, bad shapes skipped and reported.
Orders are idempotent per ``order_id`` (over the last ``MAX_RECENT_ORDERS`` orders) and remember
what they bought, so a cart line bought elsewhere is not resurrected by a late event or a merge.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any, Final

from omnistream.domain.events import Event
from omnistream.domain.profile_model import (
    MAX_CART_ITEMS,
    MAX_RECENT_ORDERS,
    MAX_STORES,
    MAX_VIEWED_PRODUCTS,
    Cart,
    CartItem,
    OrderRef,
    Orders,
    Profile,
    StoreVisits,
    ViewedProduct,
)
from omnistream.domain.profile_values import as_currency, as_id, as_money, as_quantity, as_text
from omnistream.domain.traits import order_traits, profile_zone

__all__ = ["COMMERCE_HANDLERS", "add_order"]

Update = dict[str, Any]


def _viewed(profile: Profile, event: Event, issues: list[str]) -> Update:
    props = event.properties
    product_id = as_id(props.get("product_id"))
    if product_id is None:
        issues.append(f"{event.type}.product_id")
        return {}
    viewed = ViewedProduct(
        product_id=product_id,
        viewed_at=event.timestamp,
        name=as_text(props.get("name")),
        category=as_text(props.get("category")),
        price=as_money(props.get("price")),
    )
    rest = [v for v in profile.viewed_products if v.product_id != product_id]
    return {"viewed_products": [*rest, viewed][-MAX_VIEWED_PRODUCTS:]}


def _line(raw: object, at: datetime) -> CartItem | None:
    if not isinstance(raw, dict):
        return None
    product_id = as_id(raw.get("product_id"))
    quantity = as_quantity(raw.get("quantity"))
    if product_id is None or quantity is None:
        return None
    return CartItem(
        product_id=product_id,
        quantity=quantity,
        price=as_money(raw.get("price")),
        name=as_text(raw.get("name")),
        added_at=at,
    )


def _cart(items: dict[str, CartItem], at: datetime) -> Update:
    if len(items) > MAX_CART_ITEMS:
        items = dict(list(items.items())[-MAX_CART_ITEMS:])
    return {"cart": Cart(items=items, updated_at=at)}


def _cart_updated(profile: Profile, event: Event, issues: list[str]) -> Update:
    raw = event.properties.get("items")
    if not isinstance(raw, list):
        issues.append(f"{event.type}.items")
        return {}
    items: dict[str, CartItem] = {}
    for entry in raw:
        line = _line(entry, event.timestamp)
        if line is None:
            issues.append(f"{event.type}.items[]")
            continue
        old = profile.cart.items.get(line.product_id)
        if old is not None:  # keep when it was first added: carts are trimmed oldest first
            line = line.model_copy(update={"added_at": old.added_at})
        items.pop(line.product_id, None)
        items[line.product_id] = line
    return _cart(items, event.timestamp)


def _added(profile: Profile, event: Event, issues: list[str]) -> Update:
    line = _line(event.properties, event.timestamp)
    if line is None:
        issues.append(f"{event.type}.shape")
        return {}
    if profile.orders.bought_since(line.product_id, event.timestamp):
        return {}  # a late add-to-cart of something already bought
    items = dict(profile.cart.items)
    old = items.pop(line.product_id, None)
    if old is not None:
        quantity = min(old.quantity + line.quantity, 999)
        line = line.model_copy(
            update={
                "quantity": quantity,
                "price": line.price if line.price is not None else old.price,
                "name": line.name or old.name,
            }
        )
    items[line.product_id] = line
    return _cart(items, event.timestamp)


def _removed(profile: Profile, event: Event, issues: list[str]) -> Update:
    product_id = as_id(event.properties.get("product_id"))
    quantity = as_quantity(event.properties.get("quantity"), default=None)
    if product_id is None or ("quantity" in event.properties and quantity is None):
        issues.append(f"{event.type}.shape")
        return {}
    items = dict(profile.cart.items)
    old = items.get(product_id)
    if old is None:
        return {}
    if quantity is None or quantity >= old.quantity:
        del items[product_id]
    else:
        items[product_id] = old.model_copy(update={"quantity": old.quantity - quantity})
    return _cart(items, event.timestamp)


def _cleared(profile: Profile, event: Event, issues: list[str]) -> Update:
    return {"cart": Cart(updated_at=event.timestamp)} if profile.cart.items else {}


def _order(profile: Profile, event: Event, issues: list[str]) -> Update:
    props = event.properties
    order_id = as_id(props.get("order_id"))
    total = as_money(props.get("total"))
    currency = as_currency(props.get("currency")) if "currency" in props else None
    if order_id is None or total is None or ("currency" in props and currency is None):
        issues.append(f"{event.type}.shape")
        return {}
    orders = profile.orders
    if orders.has(order_id):
        return {}  # a redelivered or re-sent order changes nothing
    raw_items = props.get("items")
    bought: list[str] = []
    if isinstance(raw_items, list):
        for entry in raw_items:
            pid = as_id(entry.get("product_id")) if isinstance(entry, dict) else None
            if pid is None:
                issues.append(f"{event.type}.items[]")
            elif pid not in bought:
                bought.append(pid)
    elif raw_items is not None:
        issues.append(f"{event.type}.items")
    ref = OrderRef(
        order_id=order_id,
        total=total,
        currency=currency,
        placed_at=event.timestamp,
        product_ids=bought[:MAX_CART_ITEMS],
    )
    update: Update = {"orders": add_order(orders, ref, profile_zone(profile.timezone))}
    cart = profile.cart.items
    gone = [pid for pid in bought if pid in cart and cart[pid].added_at <= event.timestamp]
    if gone:  # bought lines leave the cart; others stay
        update |= _cart({k: v for k, v in cart.items() if k not in gone}, event.timestamp)
    return update


def add_order(orders: Orders, ref: OrderRef, zone: tzinfo = UTC) -> Orders:
    """Aggregates and computed traits after one new (not yet seen) order; shared with profile
    merging. ``zone`` is the customer's, for the local weekday/hour histograms."""
    currency = orders.currency or ref.currency
    same = ref.currency is None or ref.currency == currency
    latest = orders.last_order_at is None or ref.placed_at >= orders.last_order_at
    recent = sorted([*orders.recent, ref], key=lambda r: (r.placed_at, r.order_id))
    last_order_at = ref.placed_at if latest else orders.last_order_at
    total = orders.count + orders.other_currency_count + 1
    return Orders(
        count=orders.count + (1 if same else 0),
        revenue=orders.revenue + (ref.total if same else 0),
        currency=currency,
        other_currency_count=orders.other_currency_count + (0 if same else 1),
        last_order_at=last_order_at,
        last_order_id=ref.order_id if latest else orders.last_order_id,
        last_order_total=ref.total if latest else orders.last_order_total,
        recent=recent[-MAX_RECENT_ORDERS:],
        **order_traits(orders, ref, zone, total, last_order_at),
    )


def _store(profile: Profile, event: Event, issues: list[str]) -> Update:
    store_id = as_id(event.properties.get("store_id"))
    if store_id is None:
        issues.append(f"{event.type}.store_id")
        return {}
    visits = profile.store_visits
    latest = visits.last_visit_at is None or event.timestamp >= visits.last_visit_at
    stores = [s for s in visits.stores if s != store_id] + [store_id]
    return {
        "store_visits": StoreVisits(
            count=visits.count + 1,
            last_visit_at=event.timestamp if latest else visits.last_visit_at,
            last_store_id=store_id if latest else visits.last_store_id,
            stores=stores[-MAX_STORES:],
        )
    }


COMMERCE_HANDLERS: Final = {
    "product_viewed": _viewed,
    "cart_updated": _cart_updated,
    "product_added_to_cart": _added,
    "product_removed_from_cart": _removed,
    "cart_cleared": _cleared,
    "order_placed": _order,
    "store_visited": _store,
}
