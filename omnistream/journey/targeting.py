"""The targeting functions of the condition language: local time, order history, scores.

They read the same JSON view of the profile as every condition (``ctx["profile"]``) and
``ctx["now"]``; like the other named functions they never raise: missing or malformed data
gives ``None`` (null), which compares as false. Costs are bounded by the row itself: the order
functions scan at most ``MAX_RECENT_ORDERS`` (100) orders, parsed once per profile view.

**Time zone.** Local dates, weekdays and hours are the customer's: the ``timezone`` trait when
it is a real IANA zone, else the ``default_timezone`` of journeys/policies.yaml (the same
fallback quiet hours use), else UTC. The catalog loader puts that default, the segments and the
score settings of journeys/segments.yaml into a ``Targeting`` that conditions capture when they
are compiled (``using_targeting``), so evaluation needs no lookup.

**Order history.** Aggregates cover the orders the profile holds: every order ever ingested
for this customer (history that predates a journey counts), up to the last 100 per customer;
``days=N`` keeps orders placed in the last N x 24 hours, ``weekday="fri"`` those placed on a
local Friday, ``product="sku"`` those containing that product. Sums and averages are in the
profile's main currency (``profile.orders.currency``); counts include every currency.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Final

from omnistream.domain.traits import (
    PurchaseModel,
    RfmThresholds,
    expected_purchases,
    p_alive,
    rfm_scores,
    rfm_segment,
)
from omnistream.policies.quiet_hours import WEEKDAYS, zone

__all__ = [
    "MAX_DAYS",
    "ORDER_FILTERS",
    "SCORE_FUNCTIONS",
    "TARGETING_FUNCTIONS",
    "Targeting",
    "current_targeting",
    "keyword_problem",
    "using_targeting",
]

MAX_DAYS: Final = 3660
"""Largest ``days`` a filter, offset or horizon accepts (ten years)."""

ORDER_FILTERS: Final = frozenset({"days", "weekday", "product"})

Ctx = Mapping[str, Any]


@dataclass(frozen=True)
class Targeting:
    """What targeting functions know besides a condition's context: set by the catalog loader.

    ``segments`` maps a segment name to its compiled condition (a function of the context);
    ``digest`` identifies the segments file's content (journey versions include it).
    """

    segments: Mapping[str, Callable[[Ctx], Any]] = field(default_factory=dict)
    default_timezone: str = "UTC"
    rfm: RfmThresholds = field(default_factory=RfmThresholds)
    purchase_model: PurchaseModel = field(default_factory=PurchaseModel)
    digest: str = ""


_TARGETING: ContextVar[Targeting | None] = ContextVar("omnistream_targeting", default=None)


@contextlib.contextmanager
def using_targeting(targeting: Targeting) -> Iterator[Targeting]:
    """Conditions compiled inside this block use ``targeting``."""
    token = _TARGETING.set(targeting)
    try:
        yield targeting
    finally:
        _TARGETING.reset(token)


def current_targeting() -> Targeting:
    """The ``Targeting`` conditions compiled now will capture (defaults outside a catalog)."""
    return _TARGETING.get() or _DEFAULT


_DEFAULT: Final = Targeting()


# ------------------------------------------------------------------------------- parsing


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _profile(ctx: Ctx) -> Mapping[str, Any]:
    profile = ctx.get("profile")
    return profile if isinstance(profile, dict) else {}


def _zone(ctx: Ctx, t: Targeting) -> tzinfo:
    traits = _profile(ctx).get("traits")
    name = traits.get("timezone") if isinstance(traits, dict) else None
    return zone(name if isinstance(name, str) else None, t.default_timezone)


def _now(ctx: Ctx) -> datetime | None:
    now = ctx.get("now")
    return now if isinstance(now, datetime) and now.tzinfo is not None else None


def _local_day(value: Any, ctx: Ctx, t: Targeting) -> date | None:
    """The customer's local date of a timestamp, or a date string as it is (a birthday)."""
    if value is None:
        now = _now(ctx)
        return now.astimezone(_zone(ctx, t)).date() if now is not None else None
    moment = _moment(value)
    if moment is not None:
        return moment.astimezone(_zone(ctx, t)).date()
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _local(value: Any, ctx: Ctx, t: Targeting) -> datetime | None:
    moment = _now(ctx) if value is None else _moment(value)
    return moment.astimezone(_zone(ctx, t)) if moment is not None else None


# ----------------------------------------------------------------------------- local time


def local_date(ctx: Ctx, t: Targeting, value: Any = None, *, days: Any = 0) -> str | None:
    """``YYYY-MM-DD`` of ``value`` (default now) in the customer's zone, plus ``days``."""
    day = _local_day(value, ctx, t)
    if day is None or not _is_days(days, signed=True):
        return None
    return (day + timedelta(days=int(days))).isoformat()


def local_weekday(ctx: Ctx, t: Targeting, value: Any = None) -> str | None:
    day = _local_day(value, ctx, t)
    return WEEKDAYS[day.weekday()] if day is not None else None


def local_hour(ctx: Ctx, t: Targeting, value: Any = None) -> int | None:
    local = _local(value, ctx, t)
    return local.hour if local is not None else None


def local_days_since(ctx: Ctx, t: Targeting, value: Any) -> int | None:
    """Calendar days between ``value``'s local date and today's (0 = today, 1 = yesterday)."""
    then, today = _local_day(value, ctx, t), _local_day(None, ctx, t)
    return (today - then).days if then is not None and today is not None else None


# -------------------------------------------------------------------------- order history


@dataclass(frozen=True)
class _Order:
    placed_at: datetime
    total: float | None
    currency: Any
    products: tuple[str, ...]


class _ParsedOrders:
    """Parsed ``recent`` orders of the last profile view seen (one entry, held by identity:
    the engine builds one JSON view per input and every condition of that input reuses it)."""

    def __init__(self) -> None:
        self._source: list[Any] | None = None
        self._orders: list[_Order] = []
        self._weekdays: dict[tzinfo, dict[datetime, int]] = {}

    def weekday(self, order: _Order, tz: tzinfo) -> int:
        """The order's local weekday, converted once per zone and profile view."""
        days = self._weekdays.setdefault(tz, {})
        found = days.get(order.placed_at)
        if found is None:
            found = days[order.placed_at] = order.placed_at.astimezone(tz).weekday()
        return found

    def of(self, ctx: Ctx) -> list[_Order]:
        orders = _profile(ctx).get("orders")
        recent = orders.get("recent") if isinstance(orders, dict) else None
        if not isinstance(recent, list):
            return []
        if recent is not self._source:
            self._orders = [o for o in map(_order, recent) if o is not None]
            self._source = recent
            self._weekdays = {}
        return self._orders


def _order(raw: Any) -> _Order | None:
    if not isinstance(raw, dict):
        return None
    placed_at = _moment(raw.get("placed_at"))
    if placed_at is None:
        return None
    try:
        total: float | None = float(raw.get("total"))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        total = None
    products = raw.get("product_ids")
    ids = tuple(p for p in products if isinstance(p, str)) if isinstance(products, list) else ()
    return _Order(placed_at, total, raw.get("currency"), ids)


_PARSED: Final = _ParsedOrders()


def _is_days(value: Any, *, signed: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return (-MAX_DAYS if signed else 0) <= value <= MAX_DAYS


def _matching(ctx: Ctx, t: Targeting, filters: Mapping[str, Any]) -> list[_Order] | None:
    """The orders passing ``filters`` (oldest first), or None when a filter is unusable."""
    orders = _PARSED.of(ctx)
    days = filters.get("days")
    if days is not None:
        now = _now(ctx)
        if now is None or not _is_days(days):
            return None
        since = now - timedelta(days=days)
        orders = [o for o in orders if since <= o.placed_at <= now]
    weekday = filters.get("weekday")
    if weekday is not None:
        if weekday not in WEEKDAYS:
            return None
        tz = _zone(ctx, t)
        index = WEEKDAYS.index(weekday)
        orders = [o for o in orders if _PARSED.weekday(o, tz) == index]
    product = filters.get("product")
    if product is not None:
        if not isinstance(product, str):
            return None
        orders = [o for o in orders if product in o.products]
    return orders


def _main_currency(ctx: Ctx, orders: list[_Order]) -> list[float]:
    summary = _profile(ctx).get("orders")
    currency = summary.get("currency") if isinstance(summary, dict) else None
    return [o.total for o in orders if o.total is not None and o.currency in (None, currency)]


def orders_count(ctx: Ctx, t: Targeting, **filters: Any) -> int | None:
    orders = _matching(ctx, t, filters)
    return len(orders) if orders is not None else None


def orders_sum(ctx: Ctx, t: Targeting, **filters: Any) -> float | None:
    orders = _matching(ctx, t, filters)
    return round(sum(_main_currency(ctx, orders)), 2) if orders is not None else None


def orders_avg(ctx: Ctx, t: Targeting, **filters: Any) -> float | None:
    orders = _matching(ctx, t, filters)
    totals = _main_currency(ctx, orders) if orders is not None else []
    return round(sum(totals) / len(totals), 2) if totals else None


def last_order_at(ctx: Ctx, t: Targeting, **filters: Any) -> str | None:
    orders = _matching(ctx, t, filters)
    return orders[-1].placed_at.astimezone(UTC).isoformat() if orders else None


def days_between_orders(ctx: Ctx, t: Targeting, **filters: Any) -> float | None:
    """Mean days between consecutive matching orders: (last - first) / (n - 1)."""
    orders = _matching(ctx, t, filters)
    if orders is None or len(orders) < 2:
        return None
    span = (orders[-1].placed_at - orders[0].placed_at).total_seconds() / 86400
    return round(span / (len(orders) - 1), 4)


# --------------------------------------------------------------------------------- scores


@dataclass(frozen=True)
class _Summary:
    orders: int
    revenue: float
    first: datetime
    last: datetime
    now: datetime


def _summary(ctx: Ctx) -> _Summary | None:
    """Lifetime order figures of the profile (all currencies counted; revenue in the main)."""
    orders = _profile(ctx).get("orders")
    now = _now(ctx)
    if not isinstance(orders, dict) or now is None:
        return None
    count, other = orders.get("count", 0), orders.get("other_currency_count", 0)
    if not isinstance(count, int) or not isinstance(other, int) or count + other < 1:
        return None
    last = _moment(orders.get("last_order_at"))
    first = _moment(orders.get("first_order_at"))
    if first is None:  # a row from before first_order_at: its oldest recent order
        parsed = _PARSED.of(ctx)
        first = parsed[0].placed_at if parsed else last
    try:
        revenue = float(orders.get("revenue", 0))
    except (TypeError, ValueError, OverflowError):
        return None
    if last is None or first is None or first > last or last > now:
        return None
    return _Summary(count + other, revenue, first, last, now)


def _days(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 86400


def rfm_score(ctx: Ctx, t: Targeting) -> str | None:
    s = _summary(ctx)
    return rfm_scores(_days(s.now, s.last), s.orders, s.revenue, t.rfm).score if s else None


def rfm_label(ctx: Ctx, t: Targeting) -> str:
    s = _summary(ctx)
    if s is None:
        return "none"
    return rfm_segment(rfm_scores(_days(s.now, s.last), s.orders, s.revenue, t.rfm))


def p_alive_now(ctx: Ctx, t: Targeting) -> float | None:
    s = _summary(ctx)
    if s is None:
        return None
    x, t_x, age = s.orders - 1, _days(s.last, s.first), _days(s.now, s.first)
    return round(p_alive(x, t_x, age, t.purchase_model), 6)


def expected_orders(ctx: Ctx, t: Targeting, *, days: Any = 30) -> float | None:
    s = _summary(ctx)
    if s is None or not _is_days(days):
        return None
    x, t_x, age = s.orders - 1, _days(s.last, s.first), _days(s.now, s.first)
    return round(expected_purchases(float(days), x, t_x, age, t.purchase_model), 6)


def keyword_problem(function: str, keyword: str, constant: Any) -> tuple[str, str | None] | None:
    """(message, hint) when a constant keyword argument can never work, else None."""
    if keyword == "weekday" and constant not in WEEKDAYS:
        return "expected a weekday", f"one of: {', '.join(WEEKDAYS)}"
    if keyword == "product" and not isinstance(constant, str):
        return "expected a product id string", None
    if keyword == "days":
        signed = function == "local_date"
        if isinstance(constant, bool) or not isinstance(constant, int | float):
            return "expected a number of days", None
        if not _is_days(constant, signed=signed):
            return f"days must be between {-MAX_DAYS if signed else 0} and {MAX_DAYS}", None
    return None


Impl = Callable[..., Any]

TARGETING_FUNCTIONS: Final[dict[str, tuple[int, int, frozenset[str], Impl]]] = {
    "local_date": (0, 1, frozenset({"days"}), local_date),
    "local_weekday": (0, 1, frozenset(), local_weekday),
    "local_hour": (0, 1, frozenset(), local_hour),
    "local_days_since": (1, 1, frozenset(), local_days_since),
    "orders_count": (0, 0, ORDER_FILTERS, orders_count),
    "orders_sum": (0, 0, ORDER_FILTERS, orders_sum),
    "orders_avg": (0, 0, ORDER_FILTERS, orders_avg),
    "last_order_at": (0, 0, ORDER_FILTERS, last_order_at),
    "days_between_orders": (0, 0, ORDER_FILTERS, days_between_orders),
    "rfm_score": (0, 0, frozenset(), rfm_score),
    "rfm_segment": (0, 0, frozenset(), rfm_label),
    "p_alive": (0, 0, frozenset(), p_alive_now),
    "expected_orders": (0, 0, frozenset({"days"}), expected_orders),
}
"""name -> (min positional, max positional, keywords, implementation(ctx, targeting, ...))."""

SCORE_FUNCTIONS: Final = frozenset({"rfm_score", "rfm_segment", "p_alive", "expected_orders"})
"""Functions whose result depends on the segments file's settings (journey versions)."""
