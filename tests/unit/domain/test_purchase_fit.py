"""BG/NBD fitting (omnistream/domain/purchase_fit.py): the optimizer and the recovery of
known parameters from simulated customers."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from omnistream.domain.purchase_fit import History, fit, history_of, nelder_mead
from omnistream.domain.traits import PurchaseModel, log_likelihood

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def test_nelder_mead_finds_the_rosenbrock_minimum() -> None:
    def rosenbrock(p: Sequence[float]) -> float:
        return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2

    best, value, iterations = nelder_mead(rosenbrock, [-1.2, 1.0], tolerance=1e-14)
    assert best == pytest.approx([1.0, 1.0], abs=1e-3)
    assert value < 1e-6 and iterations < 2000


def _simulate(model: PurchaseModel, customers: int, seed: int) -> list[History]:
    """The BG/NBD story: customers start over the first 100 days, are watched until day 365."""
    rng = random.Random(seed)
    out = []
    for _ in range(customers):
        start = rng.uniform(0, 100)
        rate = rng.gammavariate(model.r, 1 / model.alpha)
        p = rng.betavariate(model.a, model.b)
        clock, last, x = start, start, 0
        while True:  # the first order never ends a customer; each repeat order may
            clock += rng.expovariate(rate)
            if clock > 365:
                break
            x, last = x + 1, clock
            if rng.random() < p:
                break
        out.append(History(x=x, t_x=last - start, age=365 - start))
    return out


def test_fit_recovers_known_parameters() -> None:
    truth = PurchaseModel(r=0.8, alpha=20.0, a=0.6, b=3.0)
    data = _simulate(truth, 3000, seed=11)
    result = fit(data, start=PurchaseModel(r=1, alpha=10, a=1, b=1))
    found = result.model
    assert result.customers == 3000
    true_ll = sum(log_likelihood(h.x, h.t_x, h.age, truth) for h in data)
    assert result.log_likelihood >= true_ll  # the maximum is at least as likely as the truth
    assert found.r == pytest.approx(truth.r, rel=0.25)
    assert found.alpha == pytest.approx(truth.alpha, rel=0.3)
    assert found.r / found.alpha == pytest.approx(truth.r / truth.alpha, rel=0.15)


def test_fit_needs_customers() -> None:
    with pytest.raises(ValueError, match="no customer"):
        fit([])


def test_history_of_an_exported_profile() -> None:
    """First order 1 Jan, last 31 Jan, 4 orders (3 + 1 in another currency), as of 1 June:
    x = 3, t_x = 30 days, T = 151 days."""
    first = datetime(2026, 1, 1, tzinfo=UTC)
    profile = {
        "orders": {
            "count": 3,
            "other_currency_count": 1,
            "first_order_at": first.isoformat(),
            "last_order_at": (first + timedelta(days=30)).isoformat(),
        }
    }
    assert history_of(profile, AS_OF) == History(x=3, t_x=30.0, age=151.0)


def test_history_of_an_old_row_uses_the_oldest_recent_order() -> None:
    profile = {
        "orders": {
            "count": 1,
            "last_order_at": "2026-05-01T00:00:00+00:00",
            "recent": [{"placed_at": "2026-05-01T00:00:00+00:00"}],
        }
    }
    assert history_of(profile, AS_OF) == History(x=0, t_x=0.0, age=31.0)


@pytest.mark.parametrize(
    "orders",
    [
        {},
        {"count": 0},
        {"count": "3", "last_order_at": "2026-05-01T00:00:00+00:00"},
        {"count": 2, "last_order_at": "not a time", "first_order_at": "2026-01-01T00:00:00+00:00"},
        {"count": 2, "last_order_at": "2026-07-01T00:00:00+00:00", "first_order_at": "2026-01-01"},
    ],
)
def test_history_of_skips_unusable_profiles(orders: dict[str, object]) -> None:
    assert history_of({"orders": orders}, AS_OF) is None
