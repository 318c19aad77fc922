"""Live journey figures (who stands on which step now) from customer rows. Pure.

The stats table counts what happened; how many instances wait on a step *now*, since when, and
when the next of them is due is only in the customer rows, which are partitioned across the
workers. Each worker scans the rows of the partitions it owns (``scan``) and the console merges
the answers of every worker (``merge``), so the figures cover the fleet.

Cost: one pass over the owned rows; a row without ``"instances"`` is skipped without parsing,
and a row is parsed only if it mentions a journey (about 65 µs each). ``cap`` bounds the rows
parsed per request (a console click must not stall a worker's event loop for seconds); a capped
answer says so and its counts are a floor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from omnistream.domain.state import CustomerState

__all__ = ["DEFAULT_CAP", "empty", "merge", "scan"]

DEFAULT_CAP: Final = 20_000

Live = dict[str, Any]
"""``{"journeys": {journey: {"active": n, "steps": {step: {"waiting", "oldest_entered_at",
"next_due"}}}}, "scanned": rows parsed, "capped": bool}`` (JSON-able: it crosses workers)."""


def empty() -> Live:
    return {"journeys": {}, "scanned": 0, "capped": False}


def scan(rows: Iterable[tuple[bytes, bytes]], cap: int = DEFAULT_CAP) -> Live:
    """Live instances per journey and step in ``rows`` (key, CustomerState bytes)."""
    out = empty()
    for _key, raw in rows:
        if b'"instances"' not in raw:
            continue
        if out["scanned"] >= cap:
            out["capped"] = True
            break
        out["scanned"] += 1
        _add_row(out["journeys"], CustomerState.from_bytes(raw))
    return out


def _add_row(journeys: dict[str, Any], state: CustomerState) -> None:
    for instance in state.instances.values():
        journey = journeys.setdefault(instance.journey_id, {"active": 0, "steps": {}})
        journey["active"] += 1
        timer = state.timers.get(instance.timer_id) if instance.timer_id else None
        _add_step(
            journey["steps"],
            instance.step_id,
            instance.entered_at.isoformat(),
            timer.due.isoformat() if timer is not None else None,
        )


def _add_step(steps: dict[str, Any], step_id: str, entered: str, due: str | None) -> None:
    figures = steps.setdefault(step_id, {"waiting": 0, "oldest_entered_at": None, "next_due": None})
    figures["waiting"] += 1
    figures["oldest_entered_at"] = _earliest(figures["oldest_entered_at"], entered)
    figures["next_due"] = _earliest(figures["next_due"], due)


def _earliest(a: str | None, b: str | None) -> str | None:
    """The earlier of two ISO times in UTC (the rows store aware UTC times, so text order is
    time order)."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def merge(parts: Iterable[Mapping[str, Any]]) -> Live:
    """Several workers' ``scan`` answers as one (they own disjoint partitions)."""
    out = empty()
    for part in parts:
        out["scanned"] += int(part.get("scanned", 0))
        out["capped"] = out["capped"] or bool(part.get("capped"))
        for journey_id, journey in part.get("journeys", {}).items():
            into = out["journeys"].setdefault(journey_id, {"active": 0, "steps": {}})
            into["active"] += int(journey.get("active", 0))
            for step_id, step in journey.get("steps", {}).items():
                figures = into["steps"].setdefault(
                    step_id, {"waiting": 0, "oldest_entered_at": None, "next_due": None}
                )
                figures["waiting"] += int(step.get("waiting", 0))
                for name in ("oldest_entered_at", "next_due"):
                    figures[name] = _earliest(figures[name], step.get(name))
    return out
