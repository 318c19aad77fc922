"""Journey stats from the journey event stream: counts, conversion, uplift, cost. Pure.

Counting: every record adds 1 to one *cell* (journey version, step, kind, outcome, split path,
control flag, channel) of two buckets of its journey: its UTC hour (``h<hours since epoch>``)
and ``all`` (since the start; filtered by version for "since this version"). ``sent`` records
also add their price to the cell's cost. The runtime keeps the buckets in a Faust table
(``runtime/journey_events.py``); everything else here is arithmetic on plain dicts, so the same
code answers the API and the tests.

Windows are aligned to UTC hours: the last hour is this hour's bucket and the one before
(so between 60 and 120 minutes), a day is this hour and the 24 before, and so on.

Uplift (treatment minus control conversion) comes with a 95% interval by Newcombe's hybrid
score method (Newcombe 1998, method 10) from the two Wilson score intervals (l, u)::

    Wilson(x, n): (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n),  p = x/n, z = 1.96
    d = p_t - p_c
    lower = d - sqrt((p_t - l_t)² + (u_c - p_c)²)
    upper = d + sqrt((u_t - p_t)² + (p_c - l_c)²)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from omnistream.domain.journey_events import JourneyEvent

__all__ = [
    "ALL",
    "WINDOWS",
    "Cells",
    "add",
    "bucket_of",
    "cell_of",
    "cells_in_window",
    "count",
    "counted_key",
    "newcombe_interval",
    "parse_stats_key",
    "stats_key",
    "summary",
    "wilson_interval",
]

ALL: Final = "all"
SEP: Final = "\x1f"
FIELDS: Final = ("version", "step", "kind", "outcome", "path", "control", "channel")
WINDOWS: Final = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
Z95: Final = 1.959963984540054

COUNTED: Final = "\x00counted"
"""The journey-id slot of a partition's counted-offset key (no journey id starts with NUL)."""

Cells = dict[str, dict[str, float]]
"""Bucket value: ``{"n": {cell: count}, "c": {cell: cost}}`` (JSON-able)."""


def stats_key(journey_id: str, bucket: str, partition: int) -> bytes:
    """The table key of one journey's bucket counted from one stream partition."""
    return f"{journey_id}{SEP}{bucket}{SEP}{partition}".encode()


def counted_key(partition: int) -> bytes:
    """The table key holding the next stream offset of ``partition`` not counted yet."""
    return stats_key(COUNTED, "", partition)


def parse_stats_key(key: bytes) -> tuple[str, str, int] | None:
    """``(journey_id, bucket, partition)`` of a bucket key; None for a counted-offset key."""
    journey_id, bucket, partition = key.decode().split(SEP)
    if journey_id == COUNTED:
        return None
    return journey_id, bucket, int(partition)


def cell_of(record: JourneyEvent) -> str:
    """The cell a record counts in (``SEP``-joined ``FIELDS``; empty for null). An exit has no
    outcome, so its cell keeps the exit reason there: exits are counted per step and reason."""
    control = "" if record.control is None else ("1" if record.control else "0")
    outcome = record.reason if record.kind == "exited" else record.outcome
    parts = (
        record.journey_version, record.step_id, record.kind, outcome, record.path,
        control, record.channel,
    )  # fmt: skip
    return SEP.join(part or "" for part in parts)


def bucket_of(at: datetime) -> str:
    """The hour bucket of a time: ``h`` + whole hours since the epoch (UTC)."""
    return f"h{math.floor(at.timestamp() / 3600)}"


def add(cells: Cells, record: JourneyEvent) -> None:
    """Count ``record`` into ``cells`` (in place)."""
    cell = cell_of(record)
    counts = cells.setdefault("n", {})
    counts[cell] = counts.get(cell, 0) + 1
    if record.cost is not None:
        costs = cells.setdefault("c", {})
        costs[cell] = costs.get(cell, 0.0) + record.cost


def merge(into: Cells, other: Mapping[str, Mapping[str, float]]) -> Cells:
    """``into`` plus ``other`` (in place; returns ``into``)."""
    for part in ("n", "c"):
        target = into.setdefault(part, {})
        for cell, value in other.get(part, {}).items():
            target[cell] = target.get(cell, 0) + value
    return into


def count(records: Iterable[JourneyEvent]) -> dict[str, dict[str, Cells]]:
    """journey id -> bucket -> cells for ``records`` (what the Faust table holds, summed over
    partitions). Records without a journey are not counted."""
    out: dict[str, dict[str, Cells]] = {}
    for record in records:
        if record.journey_id is None:
            continue
        buckets = out.setdefault(record.journey_id, {})
        for bucket in (bucket_of(record.at), ALL):
            add(buckets.setdefault(bucket, {}), record)
    return out


def cells_in_window(
    buckets: Mapping[str, Mapping[str, Mapping[str, float]]],
    now: datetime,
    window: str,
    version: str | None = None,
) -> Cells:
    """Sum the buckets of ``window`` (a ``WINDOWS`` name, or ``"version"``: since ``version``)."""
    total: Cells = {"n": {}, "c": {}}
    if window == "version":
        merge(total, buckets.get(ALL, {}))
        return _only_version(total, version) if version is not None else total
    first = int(bucket_of(now - WINDOWS[window])[1:])
    last = int(bucket_of(now)[1:])
    for hour in range(first, last + 1):
        merge(total, buckets.get(f"h{hour}", {}))
    return total


def _only_version(cells: Cells, version: str) -> Cells:
    return {
        part: {cell: v for cell, v in values.items() if cell.split(SEP)[0] == version}
        for part, values in cells.items()
    }


def _rows(cells: Cells) -> list[tuple[dict[str, str], float, float]]:
    costs = cells.get("c", {})
    return [
        (dict(zip(FIELDS, cell.split(SEP), strict=True)), n, costs.get(cell, 0.0))
        for cell, n in cells.get("n", {}).items()
    ]


def wilson_interval(x: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion x/n; (0, 1) when n is 0. ``x`` may exceed ``n`` in
    a window (a goal counted in it whose entry came before it): the proportion is taken as 1."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(x / n, 0.0), 1.0)
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


def newcombe_interval(
    x1: float, n1: float, x2: float, n2: float, z: float = Z95
) -> tuple[float, float] | None:
    """Newcombe hybrid score interval of p1 - p2; ``None`` if a group is empty."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def _rate(x: float, n: float) -> float | None:
    return x / n if n else None


def _group(rows: list[tuple[dict[str, str], float, float]], *names: str) -> dict[str, Any]:
    """Counts nested by the values of ``names`` (e.g. step -> kind)."""
    out: dict[str, Any] = {}
    for fields, n, _ in rows:
        node = out
        for name in names[:-1]:
            node = node.setdefault(fields[name] or "-", {})
        leaf = fields[names[-1]] or "-"
        node[leaf] = node.get(leaf, 0) + n
    return out


def _control_panel(rows: list[tuple[dict[str, str], float, float]]) -> dict[str, Any]:
    def tally(kind: str, control: str) -> float:
        return sum(n for f, n, _ in rows if f["kind"] == kind and f["control"] == control)

    nt, xt = tally("entered", "0"), tally("goal", "0")
    nc, xc = tally("entered", "1"), tally("goal", "1")
    interval = newcombe_interval(xt, nt, xc, nc)
    pt, pc = _rate(xt, nt), _rate(xc, nc)
    return {
        "treatment": {"entered": nt, "converted": xt, "rate": pt},
        "control": {"entered": nc, "converted": xc, "rate": pc},
        "uplift": pt - pc if pt is not None and pc is not None else None,
        "uplift_ci95": list(interval) if interval is not None else None,
        "method": "Newcombe hybrid score (Wilson), 95%",
    }


def _variants(rows: list[tuple[dict[str, str], float, float]]) -> dict[str, Any]:
    """Conversion per split variant among treatment instances (the control group is held out
    of every variant): instances sent down a path, and goals on that path."""
    out: dict[str, Any] = {}
    rows = [row for row in rows if row[0]["control"] != "1"]
    for fields, n, _ in rows:
        if fields["kind"] == "step" and fields["path"]:
            entry = out.setdefault(f"{fields['step']}={fields['path']}", {"entered": 0})
            entry["entered"] += n
    for name, entry in out.items():
        variant = name.split("=", 1)[1]
        goals = sum(
            n
            for f, n, _ in rows
            if f["kind"] == "goal" and (f["path"] == variant or name in f["path"].split(","))
        )
        entry["converted"] = goals
        entry["rate"] = _rate(goals, entry["entered"])
    return out


def _costs(rows: list[tuple[dict[str, str], float, float]], currency: str | None) -> dict[str, Any]:
    sent = sum(n for f, n, _ in rows if f["outcome"] == "sent")
    total = sum(c for _, _, c in rows)
    goals = sum(n for f, n, _ in rows if f["kind"] == "goal" and f["control"] != "1")
    by_channel: dict[str, float] = {}
    for fields, _, cost in rows:
        if cost:
            by_channel[fields["channel"]] = by_channel.get(fields["channel"], 0.0) + cost
    return {
        "currency": currency,
        "total": total,
        "by_channel": by_channel,
        "per_send": _rate(total, sent),
        "per_conversion": _rate(total, goals),
    }


def summary(cells: Cells, currency: str | None = None) -> dict[str, Any]:
    """The figures a console shows for one journey and window (JSON-able)."""
    rows = _rows(cells)
    exits = [row for row in rows if row[0]["kind"] == "exited"]
    others = [row for row in rows if row[0]["kind"] != "exited"]
    return {
        "by_kind": _group(rows, "kind"),
        "steps": _group(rows, "step", "kind"),
        "exits": _group(exits, "step", "outcome"),
        "versions": _group(rows, "version", "kind"),
        "outcomes": _group(others, "channel", "outcome"),
        "paths": _group(rows, "path", "kind"),
        "control": _control_panel(rows),
        "variants": _variants(rows),
        "cost": _costs(rows, currency),
    }
