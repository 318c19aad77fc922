"""Fitting the BG/NBD purchase model on exported profiles, without scipy.

scipy is not in the pinned stack (constraints.txt) and the fit runs offline from a CLI
command, so a small Nelder-Mead over the log of the four parameters is enough: the BG/NBD
log-likelihood is smooth and has four dimensions, the case Nelder-Mead handles well (the
``lifetimes`` library fits the same likelihood with scipy's Nelder-Mead). Working in log space
keeps every parameter positive without constraints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from omnistream.domain.profile_values import as_aware_datetime
from omnistream.domain.traits import PurchaseModel, log_likelihood

__all__ = ["MAX_ITERATIONS", "FitResult", "History", "fit", "history_of", "nelder_mead"]

MAX_ITERATIONS: Final = 2000


@dataclass(frozen=True)
class History:
    """One customer as BG/NBD sees it: repeat orders, last order and age, in days."""

    x: int
    t_x: float
    age: float


@dataclass(frozen=True)
class FitResult:
    model: PurchaseModel
    log_likelihood: float
    customers: int
    iterations: int


def _days(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 86400


def history_of(profile: dict[str, Any], as_of: datetime) -> History | None:
    """The BG/NBD summary of an exported profile (JSON), or None without a usable order.

    Orders in every currency count; the first order is ``first_order_at`` or, in rows from
    before that field, the oldest of the recent orders.
    """
    orders = profile.get("orders")
    if not isinstance(orders, dict):
        return None
    count = orders.get("count", 0)
    other = orders.get("other_currency_count", 0)
    if not isinstance(count, int) or not isinstance(other, int) or count + other < 1:
        return None
    last = as_aware_datetime(orders.get("last_order_at"))
    first = as_aware_datetime(orders.get("first_order_at"))
    recent = orders.get("recent")
    if first is None and isinstance(recent, list) and recent and isinstance(recent[0], dict):
        first = as_aware_datetime(recent[0].get("placed_at"))
    if last is None or first is None or first > last or last > as_of:
        return None
    return History(x=count + other - 1, t_x=_days(last, first), age=_days(as_of, first))


def nelder_mead(
    f: Callable[[Sequence[float]], float],
    start: Sequence[float],
    *,
    step: float = 0.5,
    tolerance: float = 1e-9,
    max_iterations: int = MAX_ITERATIONS,
) -> tuple[list[float], float, int]:
    """Minimise ``f`` from ``start`` (standard coefficients 1, 2, 0.5, 0.5).

    Stops when the spread of the simplex's values is below ``tolerance``; returns the best
    point, its value and the iterations used.
    """
    n = len(start)
    simplex = [list(start)] + [
        [v + (step if i == j else 0.0) for j, v in enumerate(start)] for i in range(n)
    ]
    values = [f(p) for p in simplex]
    for iteration in range(1, max_iterations + 1):
        order = sorted(range(n + 1), key=values.__getitem__)
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if abs(values[-1] - values[0]) <= tolerance * (1 + abs(values[0])):
            return simplex[0], values[0], iteration
        centroid = [sum(p[j] for p in simplex[:-1]) / n for j in range(n)]
        moved = _next_vertex(f, simplex, values, centroid)
        if moved is not None:
            simplex[-1], values[-1] = moved
        else:  # shrink every vertex halfway towards the best one
            simplex = [simplex[0]] + [_toward(simplex[0], p, 0.5) for p in simplex[1:]]
            values = [values[0]] + [f(p) for p in simplex[1:]]
    best_index = min(range(n + 1), key=values.__getitem__)
    return simplex[best_index], values[best_index], max_iterations


def _toward(centroid: list[float], point: list[float], factor: float) -> list[float]:
    return [c + factor * (p - c) for c, p in zip(centroid, point, strict=True)]


def _next_vertex(
    f: Callable[[Sequence[float]], float],
    simplex: list[list[float]],
    values: list[float],
    centroid: list[float],
) -> tuple[list[float], float] | None:
    """Reflect, expand or contract the worst vertex; None asks the caller to shrink."""
    worst = simplex[-1]
    reflected = _toward(centroid, worst, -1.0)
    fr = f(reflected)
    if fr < values[0]:
        expanded = _toward(centroid, worst, -2.0)
        fe = f(expanded)
        return (expanded, fe) if fe < fr else (reflected, fr)
    if fr < values[-2]:
        return reflected, fr
    outside = fr < values[-1]
    contracted = _toward(centroid, reflected if outside else worst, 0.5)
    fc = f(contracted)
    if fc < min(fr, values[-1]):
        return contracted, fc
    return None


def _negative_ll(histories: list[History]) -> Callable[[Sequence[float]], float]:
    def objective(logs: Sequence[float]) -> float:
        if any(v > 13.8 or v < -13.8 for v in logs):  # keep parameters in (1e-6, 1e6)
            return math.inf
        r, alpha, a, b = (math.exp(v) for v in logs)
        model = PurchaseModel(r=r, alpha=alpha, a=a, b=b)
        try:
            return -sum(log_likelihood(h.x, h.t_x, h.age, model) for h in histories)
        except (ValueError, OverflowError):
            return math.inf

    return objective


def fit(histories: Iterable[History], start: PurchaseModel | None = None) -> FitResult:
    """Maximum-likelihood BG/NBD parameters for ``histories`` (at least one customer)."""
    data = list(histories)
    if not data:
        raise ValueError("no customer with an order to fit on")
    initial = start or PurchaseModel()
    logs = [math.log(v) for v in (initial.r, initial.alpha, initial.a, initial.b)]
    best, value, iterations = nelder_mead(_negative_ll(data), logs)
    r, alpha, a, b = (math.exp(v) for v in best)
    model = PurchaseModel(r=r, alpha=alpha, a=a, b=b)
    return FitResult(model, -value, len(data), iterations)
