"""Targeting functions of the condition language (local time, order history, scores, segments).

The property tests compare the functions with a deliberately plain reference: local time from
``tz.utcoffset`` arithmetic instead of ``astimezone``, loops instead of filters, over customers
in five zones (two west of UTC) with orders near daylight-saving transitions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnistream.domain.profile import OrderRef, Orders, Profile
from omnistream.domain.profile_commerce import add_order
from omnistream.domain.traits import WEEKDAYS, RfmThresholds
from omnistream.journey.expr import ExprError, compile_expr
from omnistream.journey.targeting import Targeting, using_targeting

ZONES = ["America/Los_Angeles", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Asia/Kolkata"]
DST_EDGES = [  # UTC instants of 2026 transitions: US 8 Mar / 1 Nov, EU 29 Mar / 25 Oct
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 3, 8, 10, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2026, 11, 1, 9, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
]


def _value(source: str, ctx: dict[str, Any]) -> Any:
    return compile_expr(source).value(ctx)


def _ctx(profile: Profile, now: datetime) -> dict[str, Any]:
    return {"profile": profile.model_dump(mode="json"), "now": now}


def _ref_local(moment: datetime, tz: ZoneInfo) -> datetime:
    """Reference local wall time: UTC plus the zone's offset at that instant."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    offset = tz.utcoffset(moment.astimezone(tz))
    assert offset is not None
    return utc + offset


def _customer(zone: str, times: list[datetime], totals: list[int]) -> Profile:
    orders = Orders()
    for i, (when, total) in enumerate(zip(times, totals, strict=True)):
        ref = OrderRef(
            order_id=f"o{i}", total=Decimal(total), placed_at=when, product_ids=[f"p{total % 3}"]
        )
        orders = add_order(orders, ref, ZoneInfo(zone))
    return Profile(traits={"timezone": zone}, orders=orders)


moments = st.one_of(
    st.sampled_from(DST_EDGES).flatmap(
        lambda edge: st.integers(-4 * 60, 4 * 60).map(lambda m: edge + timedelta(minutes=m))
    ),
    st.datetimes(  # hypothesis takes naive bounds and attaches the zones
        min_value=datetime(2025, 6, 1),  # noqa: DTZ001
        max_value=datetime(2026, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    times=st.lists(moments, min_size=0, max_size=12),
    now=moments,
    days=st.integers(0, 400),
    weekday=st.sampled_from(WEEKDAYS),
    totals=st.data(),
)
def test_order_aggregates_match_the_reference(
    zone: str,
    times: list[datetime],
    now: datetime,
    days: int,
    weekday: str,
    totals: st.DataObject,
) -> None:
    amounts = totals.draw(st.lists(st.integers(1, 500), min_size=len(times), max_size=len(times)))
    ctx = _ctx(_customer(zone, times, amounts), now)
    tz = ZoneInfo(zone)
    window = [
        (t, a)
        for t, a in zip(times, amounts, strict=True)
        if now - timedelta(days=days) <= t <= now
    ]
    on_day = [(t, a) for t, a in window if WEEKDAYS[_ref_local(t, tz).weekday()] == weekday]
    filters = f'days={days}, weekday="{weekday}"'
    assert _value(f"orders_count({filters})", ctx) == len(on_day)
    assert _value(f"orders_sum(days={days})", ctx) == pytest.approx(sum(a for _, a in window))
    expected_avg = sum(a for _, a in window) / len(window) if window else None
    assert _value(f"orders_avg(days={days})", ctx) == pytest.approx(expected_avg, abs=0.01)
    latest = max((t for t, _ in on_day), default=None)
    got_latest = _value(f"last_order_at({filters})", ctx)
    assert (datetime.fromisoformat(got_latest) if got_latest else None) == latest
    ordered = sorted(t for t, _ in window)
    got_gap = _value(f"days_between_orders(days={days})", ctx)
    if len(ordered) < 2:
        assert got_gap is None
    else:
        gap = (ordered[-1] - ordered[0]).total_seconds() / 86400 / (len(ordered) - 1)
        assert got_gap == pytest.approx(gap, abs=1e-3)


@settings(max_examples=200, deadline=None)
@given(zone=st.sampled_from(ZONES), now=moments, then=moments, shift=st.integers(-400, 400))
def test_local_time_matches_the_reference(
    zone: str, now: datetime, then: datetime, shift: int
) -> None:
    tz = ZoneInfo(zone)
    ctx = _ctx(Profile(traits={"timezone": zone}), now)
    local_now = _ref_local(now, tz)
    assert _value("local_hour()", ctx) == local_now.hour
    assert _value("local_weekday()", ctx) == WEEKDAYS[local_now.weekday()]
    assert _value(f"local_date(days={shift})", ctx) == (
        (local_now.date() + timedelta(days=shift)).isoformat()
    )
    stamp = then.isoformat()
    assert _value(f"local_hour('{stamp}')", ctx) == _ref_local(then, tz).hour
    since = (local_now.date() - _ref_local(then, tz).date()).days
    assert _value(f"local_days_since('{stamp}')", ctx) == since


def test_friday_evening_in_new_york_is_saturday_in_utc() -> None:
    """An order at 2026-03-07T01:30Z is Friday 20:30 in New York, Saturday in UTC and Berlin."""
    order = datetime(2026, 3, 7, 1, 30, tzinfo=UTC)
    now = datetime(2026, 3, 10, tzinfo=UTC)
    ny = _ctx(_customer("America/New_York", [order], [30]), now)
    berlin = _ctx(_customer("Europe/Berlin", [order], [30]), now)
    assert _value('orders_count(weekday="fri")', ny) == 1
    assert _value('orders_count(weekday="fri")', berlin) == 0
    assert _value("local_weekday(last_order_at())", ny) == "fri"


def test_history_before_the_journey_counts() -> None:
    """Orders ingested a year ago are in the profile: a condition today sees all of them."""
    start = datetime(2025, 3, 7, 18, tzinfo=UTC)
    profile = _customer("Asia/Tokyo", [start + timedelta(days=7 * i) for i in range(20)], [10] * 20)
    ctx = _ctx(profile, datetime(2026, 3, 1, tzinfo=UTC))
    assert _value("orders_count()", ctx) == 20
    assert _value("orders_count(days=365)", ctx) == 20
    assert _value("days_between_orders()", ctx) == 7.0


def test_the_zone_falls_back_to_the_catalog_default_then_utc() -> None:
    """23:30 UTC on Thursday 5 March is Friday 08:30 in Tokyo, Thursday in UTC."""
    ctx = {
        "profile": {"traits": {"timezone": "Not/AZone"}},
        "now": datetime(2026, 3, 5, 23, 30, tzinfo=UTC),
    }
    assert _value("local_weekday()", ctx) == "thu"
    with using_targeting(Targeting(default_timezone="Asia/Tokyo")):
        tokyo = compile_expr("local_weekday()")
    assert tokyo.value(ctx) == "fri"
    assert _value("local_weekday()", ctx) == "thu"  # the scope ended


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("orders_count()", 0),
        ("orders_sum()", 0),
        ("orders_avg()", None),
        ("last_order_at()", None),
        ("days_between_orders()", None),
        ("rfm_segment()", "none"),
        ("rfm_score()", None),
        ("p_alive()", None),
        ("local_date('1990-05-17', days=1)", "1990-05-18"),
        ("local_weekday('1990-05-17')", "thu"),
        ("local_hour('not a time')", None),
        ("local_days_since(42)", None),
        ("orders_count(days=vars.n)", None),  # a non-number at run time is null, not an error
        ("orders_count(weekday=vars.n)", None),
    ],
)
def test_empty_or_bad_data_is_null_not_an_error(source: str, expected: Any) -> None:
    ctx = {"profile": {}, "now": datetime(2026, 3, 5, tzinfo=UTC), "vars": {"n": "x"}}
    assert _value(source, ctx) == expected


def test_without_now_the_functions_are_null() -> None:
    assert _value("local_hour()", {"profile": {}}) is None
    assert _value("orders_count(days=3)", {"profile": {}}) is None


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ('orders_count(weekday="friday")', "expected a weekday"),
        ("orders_count(day=3)", "did you mean 'days'"),
        ("orders_count(days=-1)", "between 0 and 3660"),
        ("local_date(days=99999)", "between -3660 and 3660"),
        ("orders_count(days='3')", "expected a number of days"),
        ("orders_count(product=3)", "expected a product id"),
        ("orders_count(1)", "takes 0 positional"),
        ("local_days_since()", "takes 1 positional"),
        ("local_hour(1, 2)", "takes 0 to 1 positional"),
        ("rfm_segment(days=3)", "it takes none"),
        ("orders_cnt()", "did you mean 'orders_count'"),
        ("in_segment(vars.name)", "one segment name"),
        ('in_segment("lapsed")', "unknown segment 'lapsed'"),
    ],
)
def test_compile_errors_are_precise(source: str, fragment: str) -> None:
    with pytest.raises(ExprError, match=fragment.replace("(", r"\(")):
        compile_expr(source)


def test_scores_from_the_profile_and_the_scope() -> None:
    """Orders of 60 each on 1 Jan, 1 Feb, 1 Mar 2026; now = 16 Mar: recency 15 days (R = 5),
    3 orders (F = 3), revenue 180 (M = 2) -> "532", loyal. With recency cut-offs
    (7, 10, 12, 14) the 15 days score R = 1 -> "132", at_risk."""
    times = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3)]
    ctx = _ctx(
        _customer("America/Los_Angeles", times, [60, 60, 60]), datetime(2026, 3, 16, tzinfo=UTC)
    )
    assert _value("rfm_score()", ctx) == "532"
    assert _value("rfm_segment()", ctx) == "loyal"
    strict = Targeting(rfm=RfmThresholds(recency_days=(7, 10, 12, 14)))
    with using_targeting(strict):
        score, segment = compile_expr("rfm_score()"), compile_expr("rfm_segment()")
    assert (score.value(ctx), segment.value(ctx)) == ("132", "at_risk")
    assert 0 < _value("p_alive()", ctx) <= 1
    assert _value("expected_orders(days=90)", ctx) > _value("expected_orders(days=30)", ctx) > 0


def test_in_segment_uses_the_segment_condition_in_scope() -> None:
    lapsed = compile_expr("days_since(profile.orders.last_order_at) > 90")
    with using_targeting(Targeting(segments={"lapsed": lapsed.value})):
        condition = compile_expr('in_segment("lapsed") and profile.traits.vip')
        with pytest.raises(ExprError, match="did you mean 'lapsed'"):
            compile_expr('in_segment("lapsd")')
    old = {"orders": {"last_order_at": "2025-01-01T00:00:00+00:00"}, "traits": {"vip": True}}
    new = {"orders": {"last_order_at": "2026-03-01T00:00:00+00:00"}, "traits": {"vip": True}}
    now = datetime(2026, 3, 5, tzinfo=UTC)
    assert condition.test({"profile": old, "now": now}) is True
    assert condition.test({"profile": new, "now": now}) is False


def test_product_filter_for_a_course() -> None:
    times = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)]
    ctx = _ctx(_customer("Europe/Berlin", times, [3, 4]), datetime(2026, 2, 2, tzinfo=UTC))
    assert _value("orders_count(product='p0')", ctx) == 1  # 3 % 3 == 0
    assert _value("orders_count(product='p1')", ctx) == 1
    assert _value("local_days_since(last_order_at(product='p0'))", ctx) == 32
    assert date(2026, 2, 2) - date(2026, 1, 1) == timedelta(days=32)
