"""Computed purchase traits (omnistream/domain/traits.py) against hand-computed values."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from omnistream.domain.profile import OrderRef, Orders, Profile
from omnistream.domain.profile_commerce import add_order
from omnistream.domain.traits import (
    WEEKDAYS,
    PurchaseModel,
    Rfm,
    RfmThresholds,
    expected_purchases,
    hyp2f1,
    log_likelihood,
    p_alive,
    profile_zone,
    rfm_scores,
    rfm_segment,
)
from omnistream.policies.quiet_hours import WEEKDAYS as POLICY_WEEKDAYS
from tests.unit.domain.helpers import ev, run

D0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _ref(order_id: str, placed_at: datetime, total: str = "10") -> OrderRef:
    return OrderRef(order_id=order_id, total=Decimal(total), placed_at=placed_at)


def test_weekday_names_match_the_policies() -> None:
    assert WEEKDAYS == POLICY_WEEKDAYS


def test_histograms_are_in_the_customers_local_time_across_dst() -> None:
    """New York, US DST starts 2026-03-08 at 02:00 EST (07:00 UTC).

    * 2026-03-07T01:30Z = Fri 06 March 20:30 EST (UTC-5): fri, hour 20 (UTC says Saturday 1h);
    * 2026-03-08T06:30Z = Sun 01:30 EST, before the jump: sun, hour 1;
    * 2026-03-08T07:30Z = Sun 03:30 EDT (UTC-4), after the jump: sun, hour 3.
    """
    profile = Profile(traits={"timezone": "America/New_York"})
    times = ["2026-03-07T01:30:00+00:00", "2026-03-08T06:30:00+00:00", "2026-03-08T07:30:00+00:00"]
    for i, when in enumerate(times):
        event = ev("order_placed", {"order_id": f"o{i}", "total": 10}, customer_id="c1")
        event = event.model_copy(update={"timestamp": datetime.fromisoformat(when)})
        profile = run(event, profile=profile)
    assert profile.orders.weekday_counts == {"fri": 1, "sun": 2}
    assert profile.orders.hour_counts == {"20": 1, "1": 1, "3": 1}


def test_histograms_fall_back_to_utc_for_an_unknown_zone() -> None:
    assert profile_zone("Mars/Olympus") is UTC and profile_zone(None) is UTC
    orders = add_order(Orders(), _ref("o1", D0), profile_zone("Nope/Nowhere"))
    assert orders.weekday_counts == {"mon": 1} and orders.hour_counts == {"12": 1}


def test_interval_and_expected_next_order() -> None:
    """Orders on day 0, 10 and 40: first = day 0, last = day 40, 3 orders, so the average
    interval is (40 - 0) / (3 - 1) = 20 days and the next order is expected on day 60."""
    orders = Orders()
    for i, day in enumerate((0, 10, 40)):
        orders = add_order(orders, _ref(f"o{i}", D0 + timedelta(days=day)))
        if i == 0:
            assert orders.avg_interval_days is None and orders.expected_next_order_at is None
    assert orders.first_order_at == D0
    assert orders.avg_interval_days == pytest.approx(20.0)
    assert orders.expected_next_order_at == D0 + timedelta(days=60)


def test_an_older_order_arriving_late_moves_the_first_order() -> None:
    """Orders on day 10 then (late) day 0: first = day 0, last = day 10, interval 10 days."""
    orders = add_order(add_order(Orders(), _ref("b", D0 + timedelta(days=10))), _ref("a", D0))
    assert orders.first_order_at == D0 and orders.avg_interval_days == pytest.approx(10.0)


def test_rows_from_before_the_traits_are_backfilled_from_recent_orders() -> None:
    """An old row: 2 orders (Mon 5 Jan 12:00 UTC, Tue 6 Jan 12:00 UTC) in ``recent`` but no
    histograms or first order. Kyiv is UTC+2 in winter, so a new order on Fri 9 Jan 20:00 UTC
    (22:00 local) gives mon/tue/fri, hours 14, 14, 22, first order 5 Jan, interval
    (9 Jan 20:00 - 5 Jan 12:00) / 2 = 4d 8h / 2 = 2.1667 days."""
    old = Orders(
        count=2,
        revenue=Decimal(20),
        last_order_at=D0 + timedelta(days=1),
        recent=[_ref("a", D0), _ref("b", D0 + timedelta(days=1))],
    )
    orders = add_order(
        old, _ref("c", datetime(2026, 1, 9, 20, tzinfo=UTC)), profile_zone("Europe/Kyiv")
    )
    assert orders.weekday_counts == {"mon": 1, "tue": 1, "fri": 1}
    assert orders.hour_counts == {"14": 2, "22": 1}
    assert orders.first_order_at == D0
    assert orders.count == 3
    assert orders.avg_interval_days == pytest.approx((4 + 8 / 24) / 2)


def test_old_rows_still_decode() -> None:
    raw = '{"orders": {"count": 1, "revenue": "5", "recent": []}}'
    orders = Profile.model_validate_json(raw).orders
    assert orders.weekday_counts == {} and orders.first_order_at is None


@pytest.mark.parametrize(
    ("days", "count", "revenue", "cell", "segment"),
    [
        # 45 > 30 only: R = 5 - 1 = 4; 5 >= 2, 3, 5: F = 4; 300 >= 100, 250: M = 3
        (45, 5, 300, "443", "champions"),
        # 30 is not > 30: R = 5; 1 order: F = 1; 0: M = 1
        (30, 1, 0, "511", "new"),
        # 61 > 30, 60: R = 3; 3 >= 2, 3: F = 3; 1000 >= all four: M = 5
        (61, 3, 1000, "335", "loyal"),
        # 200 > 30, 60, 120: R = 2; 12 >= all: F = 5 -> at risk
        (200, 12, 99.99, "251", "at_risk"),
        # 500 > all four: R = 1; 2 orders: F = 2 -> lapsed
        (500, 2, 100, "122", "lapsed"),
        # R = 3 (90 days), F = 2 -> needs attention
        (90, 2, 250, "323", "needs_attention"),
        # R = 4 (31 days), F = 2 -> promising
        (31, 2, 0, "421", "promising"),
    ],
)
def test_rfm_scores_and_segments(
    days: float, count: int, revenue: float, cell: str, segment: str
) -> None:
    rfm = rfm_scores(days, count, revenue, RfmThresholds())
    assert rfm.score == cell
    assert rfm_segment(rfm) == segment


def test_rfm_thresholds_are_configurable_and_checked() -> None:
    strict = RfmThresholds(recency_days=(7, 14, 21, 28))
    assert rfm_scores(10, 1, 0, strict) == Rfm(r=4, f=1, m=1)
    with pytest.raises(ValueError, match="ascending"):
        RfmThresholds(frequency=(2, 2, 5, 10))


def test_p_alive_by_hand() -> None:
    """r = alpha = a = 1, b = 2; x = 2 repeat orders, last at day 30, first 60 days ago:
    a/(b+x-1) = 1/3; ((alpha+T)/(alpha+t_x))^(r+x) = (61/31)^3 = 7.619080;
    P = 1 / (1 + 7.619080/3) = 1 / 3.539693 = 0.282510."""
    model = PurchaseModel(r=1, alpha=1, a=1, b=2)
    assert p_alive(2, 30, 60, model) == pytest.approx(0.282510, abs=1e-6)
    assert p_alive(0, 0, 500, model) == 1.0  # no repeat order: BG/NBD cannot see a dropout
    assert p_alive(2, 60, 60, model) > p_alive(2, 30, 60, model)  # a recent order: more alive


def test_hyp2f1_against_closed_forms() -> None:
    """2F1(1,1;2;z) = -ln(1-z)/z and 2F1(a,b;b;z) = (1-z)^-a."""
    for z in (0.0001, 0.3, 0.9, 0.99):
        assert hyp2f1(1, 1, 2, z) == pytest.approx(-math.log(1 - z) / z, rel=1e-10)
        assert hyp2f1(3.5, 2.0, 2.0, z) == pytest.approx((1 - z) ** -3.5, rel=1e-10)
    with pytest.raises(ValueError):
        hyp2f1(1, 1, 2, 1.0)


def test_expected_purchases_is_the_nbd_without_dropout() -> None:
    """With a tiny dropout (a = 1e-4, b = 1e4) BG/NBD is the NBD: E = (r+x)/(alpha+T) t.
    r = alpha = 1, x = 2, T = 60, t = 30: 3/61 * 30 = 1.475410."""
    model = PurchaseModel(r=1, alpha=1, a=1e-4, b=1e4)
    assert expected_purchases(30, 2, 60, 60, model) == pytest.approx(1.475410, rel=1e-3)
    assert expected_purchases(0, 2, 60, 60, model) == 0.0


def test_expected_purchases_near_a_equal_one_is_continuous() -> None:
    near = [PurchaseModel(r=1, alpha=10, a=a, b=2) for a in (0.999, 1.0, 1.001)]
    values = [expected_purchases(30, 3, 40, 50, m) for m in near]
    assert values[0] == pytest.approx(values[1], rel=1e-2)
    assert values[2] == pytest.approx(values[1], rel=1e-2)


def test_expected_purchases_matches_a_simulation() -> None:
    """A new customer (x = 0, T = 0) with the CDNOW defaults: simulate the BG/NBD story (rate
    ~ gamma(r, 1/alpha), dropout p ~ beta(a, b) after each order, orders in 90 days) and compare
    the mean with the formula (40,000 customers, seed fixed; 4 standard errors)."""
    model = PurchaseModel()
    rng = random.Random(7)
    counts = []
    for _ in range(40_000):
        rate = rng.gammavariate(model.r, 1 / model.alpha)
        p = rng.betavariate(model.a, model.b)
        clock, n = 0.0, 0
        while True:
            clock += rng.expovariate(rate) if rate > 0 else math.inf
            if clock > 90:
                break
            n += 1
            if rng.random() < p:
                break
        counts.append(n)
    mean = sum(counts) / len(counts)
    sd = math.sqrt(sum((c - mean) ** 2 for c in counts) / len(counts))
    expected = expected_purchases(90, 0, 0, 0, model)
    assert abs(mean - expected) < 4 * sd / math.sqrt(len(counts))


def test_log_likelihood_by_hand_for_a_one_time_buyer() -> None:
    """x = 0, T = 10, r = alpha = a = b = 1: LL = ln B(1,1)/B(1,1) + ln(G(1)/G(1))
    + 1*ln 1 - 1*ln 11 = -ln 11 = -2.397895."""
    model = PurchaseModel(r=1, alpha=1, a=1, b=1)
    assert log_likelihood(0, 0, 10, model) == pytest.approx(-math.log(11))
