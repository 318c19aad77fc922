"""apply_event for the commerce events: products, cart, orders, store visits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from omnistream.domain.profile import (
    MAX_CART_ITEMS,
    MAX_RECENT_ORDERS,
    MAX_VIEWED_PRODUCTS,
    apply_event_with_issues,
)
from tests.unit.domain.helpers import at, ev, order, run


def test_viewed_products_are_distinct_latest_last_and_bounded() -> None:
    views = [ev("product_viewed", {"product_id": f"p{i}"}, minutes=i) for i in range(25)]
    views.append(ev("product_viewed", {"product_id": "p10", "price": 5}, minutes=30))
    p = run(*views)
    ids = [v.product_id for v in p.viewed_products]
    assert len(ids) == MAX_VIEWED_PRODUCTS and len(set(ids)) == len(ids)
    assert ids[-1] == "p10" and p.viewed_products[-1].price == Decimal(5)
    assert "p0" not in ids


def test_cart_add_remove_clear() -> None:
    p = run(
        ev("product_added_to_cart", {"product_id": "shoe", "price": "59.90", "name": "Runner"}),
        ev("product_added_to_cart", {"product_id": "shoe", "quantity": 2}),
        ev("product_added_to_cart", {"product_id": "sock", "price": 5}),
    )
    assert p.cart.items["shoe"].quantity == 3
    assert p.cart.items["shoe"].price == Decimal("59.90")
    assert p.cart.items["shoe"].name == "Runner"
    assert p.cart.total == Decimal("184.70")
    assert p.cart.quantity == 4
    p = run(ev("product_removed_from_cart", {"product_id": "shoe", "quantity": 1}), profile=p)
    assert p.cart.items["shoe"].quantity == 2
    p = run(ev("product_removed_from_cart", {"product_id": "shoe"}), profile=p)
    assert list(p.cart.items) == ["sock"]
    removed_unknown = run(ev("product_removed_from_cart", {"product_id": "hat"}), profile=p)
    assert removed_unknown.cart == p.cart
    p = run(ev("cart_cleared", minutes=5), profile=p)
    assert p.cart.items == {} and p.cart.updated_at == at(5)


def test_cart_updated_replaces_the_cart_and_skips_bad_lines() -> None:
    start = run(ev("product_added_to_cart", {"product_id": "old"}))
    profile, issues = apply_event_with_issues(
        start,
        ev(
            "cart_updated",
            {
                "items": [
                    {"product_id": "a", "quantity": 2},
                    {"quantity": 1},
                    "junk",
                    {"product_id": "b"},
                ]
            },
        ),
    )
    assert {k: v.quantity for k, v in profile.cart.items.items()} == {"a": 2, "b": 1}
    assert issues == ["cart_updated.items[]", "cart_updated.items[]"]


def test_cart_is_bounded_oldest_lines_dropped() -> None:
    p = run(*(ev("product_added_to_cart", {"product_id": f"p{i}"}, minutes=i) for i in range(60)))
    assert len(p.cart.items) == MAX_CART_ITEMS
    assert "p0" not in p.cart.items and "p59" in p.cart.items


@pytest.mark.parametrize(
    ("event_type", "props"),
    [
        ("product_viewed", {}),
        ("product_viewed", {"product_id": None}),
        ("product_added_to_cart", {"product_id": "x", "quantity": 0}),
        ("product_added_to_cart", {"product_id": "x", "quantity": "two"}),
        ("product_added_to_cart", {"quantity": 1}),
        ("product_removed_from_cart", {"product_id": "x", "quantity": -1}),
        ("cart_updated", {"items": "everything"}),
        ("cart_updated", {}),
        ("order_placed", {"total": 10}),
        ("order_placed", {"order_id": "o1"}),
        ("order_placed", {"order_id": "o1", "total": -5}),
        ("order_placed", {"order_id": "o1", "total": "lots"}),
        ("order_placed", {"order_id": "o1", "total": 5, "currency": "euros"}),
        ("store_visited", {}),
        ("store_visited", {"store_id": 1.5}),
    ],
)
def test_malformed_commerce_events_change_nothing_but_seen(
    event_type: str, props: dict[str, Any]
) -> None:
    start = run(ev("product_added_to_cart", {"product_id": "x", "quantity": 2}))
    profile, issues = apply_event_with_issues(start, ev(event_type, props, minutes=1))
    assert profile == start.model_copy(update={"last_seen": at(1)})
    assert len(issues) == 1 and issues[0].startswith(event_type)


def test_order_aggregates_and_idempotency() -> None:
    p = run(
        order("o1", 10, currency="EUR"),
        order("o2", "30.50", minutes=5, currency="eur"),
        order("o1", 10, minutes=6, currency="EUR"),  # resent: counted once
    )
    assert p.orders.count == 2
    assert p.orders.revenue == Decimal("40.50")
    assert p.orders.average_order_value == Decimal("20.25")
    assert p.orders.currency == "EUR"
    assert (p.orders.last_order_id, p.orders.last_order_at) == ("o2", at(5))
    assert p.orders.last_order_total == Decimal("30.50")


def test_order_in_another_currency_is_counted_apart() -> None:
    p = run(order("o1", 10, currency="EUR"), order("o2", 99, minutes=1, currency="USD"))
    assert (p.orders.count, p.orders.revenue, p.orders.other_currency_count) == (1, 10, 1)
    assert p.orders.last_order_id == "o2"


def test_out_of_order_orders_keep_the_latest_as_last() -> None:
    p = run(order("late", 1, minutes=10), order("early", 2, minutes=1))
    assert p.orders.last_order_id == "late"
    assert [r.order_id for r in p.orders.recent] == ["early", "late"]


def test_order_ids_kept_for_idempotency_are_bounded() -> None:
    p = run(*(order(f"o{i}", 1, minutes=i) for i in range(MAX_RECENT_ORDERS + 5)))
    assert len(p.orders.recent) == MAX_RECENT_ORDERS
    assert p.orders.count == MAX_RECENT_ORDERS + 5


def test_order_removes_bought_lines_from_the_cart_only() -> None:
    p = run(
        ev("product_added_to_cart", {"product_id": "shoe"}, customer_id="c1"),
        ev("product_added_to_cart", {"product_id": "sock"}, customer_id="c1"),
        order("o1", 60, items=[{"product_id": "shoe"}, "junk"]),
    )
    assert list(p.cart.items) == ["sock"]
    untouched = run(order("o2", 5), profile=p)
    assert list(untouched.cart.items) == ["sock"]


def test_store_visits() -> None:
    p = run(
        ev("store_visited", {"store_id": "kyiv-1"}),
        ev("store_visited", {"store_id": "lviv-2"}, minutes=5),
        ev("store_visited", {"store_id": "kyiv-1"}, minutes=2),
    )
    assert p.store_visits.count == 3
    assert p.store_visits.last_store_id == "lviv-2"
    assert p.store_visits.stores == ["lviv-2", "kyiv-1"]
