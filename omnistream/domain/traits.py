"""Computed purchase traits: what a retail CRM derives from a customer's orders.

Two kinds, split by whether they depend on the current time:

* **Kept in the profile on every order** (``order_traits``, called by the ``order_placed``
  handler through ``add_order``): first order time, weekday and hour histograms in the
  customer's local time, the average interval between orders and the expected next order
  date. None of them changes while the customer does nothing, so storing them is exact.
* **Scored when read** (``rfm_scores``, ``rfm_segment``, ``p_alive``,
  ``expected_purchases``): recency and "probability alive" decay with time, so a value stored at
  the last order would always say "recent, alive". Conditions compute them from the stored
  inputs, ``now`` and the thresholds/parameters of the targeting file (journeys/segments.yaml);
  a single row cannot know population quantiles, so the RFM cut-offs are configured, with
  retail defaults.

The purchase-probability model is BG/NBD (Fader, Hardie and Lee, 2005, "Counting Your
Customers the Easy Way"): transparent, four parameters, fitted by ``omnistream purchases fit``
(``omnistream.domain.purchase_fit``). Time is measured in days throughout.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator

from omnistream.domain.profile_model import OrderRef, Orders

__all__ = [
    "HYP2F1_MAX_TERMS",
    "RFM_SEGMENTS",
    "WEEKDAYS",
    "PurchaseModel",
    "Rfm",
    "RfmThresholds",
    "expected_purchases",
    "hyp2f1",
    "log_likelihood",
    "order_traits",
    "p_alive",
    "profile_zone",
    "rfm_scores",
    "rfm_segment",
]

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Same names as ``policies.quiet_hours.WEEKDAYS`` (the domain does not import policies)."""

HYP2F1_MAX_TERMS: Final = 20_000
"""Series terms for the Gauss hypergeometric function. z = t/(alpha+T+t) < 1 always holds;
z = 0.99 needs about 3,000 terms. A series that has not converged raises ``ValueError`` (a
condition then sees null), never a wrong number."""

RFM_SEGMENTS: Final = (
    "champions",
    "loyal",
    "new",
    "promising",
    "at_risk",
    "lapsed",
    "needs_attention",
)
"""Labels of ``rfm_segment`` in the order the rules are tried; ``none`` means no orders."""


def profile_zone(name: object) -> tzinfo:
    """The zone histograms are kept in: the ``timezone`` trait, or UTC when unknown."""
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return UTC
    return UTC


def _bump(counts: dict[str, int], key: str) -> dict[str, int]:
    return {**counts, key: counts.get(key, 0) + 1}


def _histograms(refs: list[OrderRef], zone: tzinfo) -> tuple[dict[str, int], dict[str, int]]:
    weekdays: dict[str, int] = {}
    hours: dict[str, int] = {}
    for ref in refs:
        local = ref.placed_at.astimezone(zone)
        weekdays = _bump(weekdays, WEEKDAYS[local.weekday()])
        hours = _bump(hours, str(local.hour))
    return weekdays, hours


def order_traits(
    before: Orders, ref: OrderRef, zone: tzinfo, total: int, last_order_at: datetime | None
) -> dict[str, Any]:
    """The computed fields of the orders after ``ref``: ``total`` orders in every currency and
    the latest order time, both including ``ref``.

    Rows written before these fields existed have empty histograms and no first order time:
    the first new order fills them from the recent orders the row holds (exact for customers
    with at most ``MAX_RECENT_ORDERS`` orders), so history that predates the feature counts.
    """
    if sum(before.weekday_counts.values()) == 0 and before.recent:
        weekdays, hours = _histograms([*before.recent, ref], zone)
    else:
        local = ref.placed_at.astimezone(zone)
        weekdays = _bump(before.weekday_counts, WEEKDAYS[local.weekday()])
        hours = _bump(before.hour_counts, str(local.hour))
    known = [t for t in (before.first_order_at, ref.placed_at) if t is not None]
    if before.recent:
        known.append(before.recent[0].placed_at)
    first = min(known)
    interval: float | None = None
    expected: datetime | None = None
    if total >= 2 and last_order_at is not None:
        interval = (last_order_at - first).total_seconds() / 86400 / (total - 1)
        expected = last_order_at + timedelta(days=interval)
    return {
        "first_order_at": first,
        "weekday_counts": weekdays,
        "hour_counts": hours,
        "avg_interval_days": interval,
        "expected_next_order_at": expected,
    }


# ------------------------------------------------------------------------------------- RFM


def _ascending(values: tuple[float, ...], name: str) -> None:
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name} thresholds must be strictly ascending, got {list(values)}")


class RfmThresholds(BaseModel):
    """Cut-offs of the five RFM scores (5 is best). Defaults suit a mid-frequency retailer.

    * recency: score 5 if the last order is at most ``recency_days[0]`` days old, 4 if at most
      ``[1]``, 3 if at most ``[2]``, 2 if at most ``[3]``, else 1;
    * frequency (orders, all currencies): 1 + how many of ``frequency`` are <= the count;
    * monetary (revenue in the profile's main currency): 1 + how many of ``monetary`` are <=.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    recency_days: tuple[float, float, float, float] = (30, 60, 120, 240)
    frequency: tuple[float, float, float, float] = (2, 3, 5, 10)
    monetary: tuple[float, float, float, float] = (100, 250, 500, 1000)

    @model_validator(mode="after")
    def _ordered(self) -> RfmThresholds:
        _ascending(self.recency_days, "recency_days")
        _ascending(self.frequency, "frequency")
        _ascending(self.monetary, "monetary")
        return self


class Rfm(BaseModel):
    model_config = ConfigDict(frozen=True)

    r: int
    f: int
    m: int

    @property
    def score(self) -> str:
        """The classic three-digit cell, e.g. ``"545"``."""
        return f"{self.r}{self.f}{self.m}"


def rfm_scores(days_since_last: float, orders: int, revenue: float, th: RfmThresholds) -> Rfm:
    """RFM scores 1..5 from the raw recency (days), frequency (orders) and monetary value."""
    r = 5 - sum(1 for limit in th.recency_days if days_since_last > limit)
    f = 1 + sum(1 for limit in th.frequency if orders >= limit)
    m = 1 + sum(1 for limit in th.monetary if revenue >= limit)
    return Rfm(r=r, f=f, m=m)


def rfm_segment(rfm: Rfm) -> str:
    """The segment label of an R x F cell; the first matching rule wins.

    champions R>=4 F>=4 | loyal R>=3 F>=3 | new R>=4 F=1 | promising R>=4 |
    at_risk R<=2 F>=3 | lapsed R<=2 | needs_attention (R=3, F<=2). Monetary value ranks
    within a segment (``rfm_score``) but does not move a customer between segments, as in the
    usual R x F grid.
    """
    r, f = rfm.r, rfm.f
    if r >= 4 and f >= 4:
        return "champions"
    if r >= 3 and f >= 3:
        return "loyal"
    if r >= 4:
        return "new" if f == 1 else "promising"
    if r <= 2:
        return "at_risk" if f >= 3 else "lapsed"
    return "needs_attention"


# ---------------------------------------------------------------------------------- BG/NBD


class PurchaseModel(BaseModel):
    """BG/NBD parameters, time unit days. Transactions of a live customer follow a Poisson
    process with a gamma(r, alpha) rate; after each purchase the customer drops out with a
    beta(a, b) probability. Defaults: the CDNOW fit of the paper (r=0.243, alpha=4.414 weeks,
    a=0.793, b=2.426) with alpha in days; fit your own with ``omnistream purchases fit``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    r: float = Field(default=0.243, gt=0, le=1e6)
    alpha: float = Field(default=30.9, gt=0, le=1e6)
    a: float = Field(default=0.793, gt=0, le=1e6)
    b: float = Field(default=2.426, gt=0, le=1e6)


def p_alive(x: int, t_x: float, age: float, m: PurchaseModel) -> float:
    """P(still a customer | x repeat orders, last at t_x days, first order ``age`` days ago).

    Eq. (13) of the paper: 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).
    """
    if x <= 0:
        return 1.0
    log_ratio = (m.r + x) * math.log((m.alpha + age) / (m.alpha + t_x))
    log_term = math.log(m.a / (m.b + x - 1)) + log_ratio
    return 1.0 / (1.0 + math.exp(min(log_term, 700.0)))


def _series(a: float, b: float, c: float, z: float) -> float:
    term, total = 1.0, 1.0
    for n in range(HYP2F1_MAX_TERMS):
        term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
        total += term
        if abs(term) <= 1e-15 * abs(total):
            return total
    raise ValueError(f"hyp2f1 series did not converge for z={z}")


def hyp2f1(a: float, b: float, c: float, z: float) -> float:
    """Gauss's 2F1 for 0 <= z < 1 (all BG/NBD needs), by Euler's transformation
    2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a,c-b;c;z): in BG/NBD c-a-b = a_model-1-r-x, so the
    transformed terms shrink like n^(a_model-2-r-x) z^n even for customers with many orders,
    where the direct series first grows like n^x."""
    if not 0 <= z < 1:
        raise ValueError(f"hyp2f1 needs 0 <= z < 1, got {z}")
    return float((1 - z) ** (c - a - b) * _series(c - a, c - b, c, z))


def expected_purchases(t: float, x: int, t_x: float, age: float, m: PurchaseModel) -> float:
    """Expected orders in the next ``t`` days given the history (eq. (10) of the paper)."""
    if t <= 0:
        return 0.0
    a = m.a if abs(m.a - 1) > 1e-6 else 1 + 1e-6  # a = 1 is a removable 0/0 of the formula
    c = a + m.b + x - 1
    z = t / (m.alpha + age + t)
    power: float = ((m.alpha + age) / (m.alpha + age + t)) ** (m.r + x)
    numerator = (c / (a - 1)) * (1 - power * hyp2f1(m.r + x, m.b + x, c, z))
    dropout = 0.0
    if x > 0:
        ratio: float = ((m.alpha + age) / (m.alpha + t_x)) ** (m.r + x)
        dropout = (a / (m.b + x - 1)) * ratio
    return max(numerator / (1 + dropout), 0.0)


def _log_beta(p: float, q: float) -> float:
    return math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q)


def log_likelihood(x: int, t_x: float, age: float, m: PurchaseModel) -> float:
    """One customer's log-likelihood (eq. (6) of the paper), summed by the fit."""
    base = math.lgamma(m.r + x) - math.lgamma(m.r) + m.r * math.log(m.alpha)
    stay = _log_beta(m.a, m.b + x) - _log_beta(m.a, m.b) - (m.r + x) * math.log(m.alpha + age)
    if x == 0:
        return base + stay
    drop = (
        _log_beta(m.a + 1, m.b + x - 1) - _log_beta(m.a, m.b) - (m.r + x) * math.log(m.alpha + t_x)
    )
    top = max(stay, drop)
    return base + top + math.log(math.exp(stay - top) + math.exp(drop - top))
