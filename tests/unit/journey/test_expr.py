from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from omnistream.journey.expr import MAX_NODES, ExprError, compile_expr

CTX: dict[str, Any] = {
    "event": {"type": "order_placed", "properties": {"total": 120, "items": [{"sku": "a"}]}},
    "profile": {"traits": {"tags": ["vip"], "name": "Olena"}, "orders": {"count": 3}},
    "vars": {"limit": 100},
    "now": datetime(2026, 3, 10, tzinfo=UTC),
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("event.properties.total > vars.limit", True),
        ("event.properties.total > 200 or 'vip' in profile.traits.tags", True),
        ("not profile.orders.count", False),
        ("event.properties['total'] == 120 and event.type == 'order_placed'", True),
        ("'a' in pluck(event.properties.items, 'sku')", True),
        ("len(profile.traits.tags) == 1", True),
        ("lower(profile.traits.name) == 'olena'", True),
        ("1 < event.properties.total < 200", True),
        ("event.properties.total * 2 - 40", 200),
        ("days_since('2026-03-01T00:00:00+00:00') == 9", True),
        ("profile.traits.missing is null", True),
        ("'yes' if true else 'no'", "yes"),
        ("event.properties.items[0].sku", "a"),
    ],
)
def test_evaluates(source: str, expected: Any) -> None:
    assert compile_expr(source).value(CTX) == expected


@pytest.mark.parametrize(
    "source",
    [
        "event.properties.nothing.deeper > 3",  # None > 3 is False, not a TypeError
        "profile.traits.name > 5",
        "'x' in event.properties.total",
        "event.properties.total / 0 == 1",
        "int('9' * 1) == 8",
    ],
)
def test_nonsense_is_false_not_an_error(source: str) -> None:
    assert compile_expr(source).test(CTX) is False


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("__import__('os')", "unknown function"),
        ("__import__('os').system('id')", "only the built-in functions"),
        ("event.__class__", "starting with '_'"),
        ("event['__class__']", "starting with '_'"),
        ("(lambda: 1)()", "only the built-in functions"),
        ("[x for x in event.properties.items]", "ListComp is not allowed"),
        ("2 ** 1000000", "Pow is not allowed"),
        ("'a' * 10", None),
        ("event.properties.total = 3", "invalid condition syntax"),
        ("len(1, 2)", "takes 1 positional"),
    ],
)
def test_rejects_unsafe_or_invalid(source: str, fragment: str | None) -> None:
    if fragment is None:  # string * int compiles but never builds a big string
        assert compile_expr(source).value(CTX) is None
        return
    with pytest.raises(ExprError, match=fragment.replace("(", r"\(")):
        compile_expr(source)


def test_hints_for_typos() -> None:
    with pytest.raises(ExprError) as root:
        compile_expr("evnt.type == 'x'")
    assert root.value.hint == "did you mean 'event'?"
    with pytest.raises(ExprError) as field:
        compile_expr("event.propertes.total > 1")
    assert field.value.hint == "did you mean 'properties'?"
    with pytest.raises(ExprError) as function:
        compile_expr("lowr(profile.traits.name) == 'a'")
    assert function.value.hint == "did you mean 'lower'?"


def test_size_caps() -> None:
    with pytest.raises(ExprError, match="longer than"):
        compile_expr("1 == 1 and " * 300 + "true")
    many = " + ".join(["1"] * (MAX_NODES // 2))
    with pytest.raises(ExprError, match="nodes"):
        compile_expr(many)
