"""One journey as a graph with its figures: the model the page draws and the JSON route serves.

Pure: a ``Journey``, the window's stats cells (``domain/journey_stats.py``, the same buckets
``GET /journeys/{id}/stats`` sums) and the live waiting figures (``console/live.py``) go in; a
JSON-able dict of nodes and edges comes out. Per step:

- ``entered``: the step's ``step`` records in the window (a send step's engagement-fallback
  attempts and quiet-hours holds are records too, so they count again: the stats API's figure);
- ``waiting``: live instances standing on the step now (every worker's rows, not windowed), with
  the earliest journey entry among them and the next timer due;
- ``exited`` / ``goals``: exit and goal records at the step in the window, and
  ``exits_by_reason`` (completed, exit_on, goal, an exit step's reason...);
- ``advanced``: ``entered - exited - waiting``, never below 0. The stream has no "left step S"
  record, so this is derived; it is exact for the window ``version`` of a journey whose
  instances all entered in it, and an estimate for shorter windows;
- send steps: outcomes per channel (sent, delivered, opened, failed, fallback...);
- split steps: instances per path and its share of the step's entries (treatment only: the
  control group never reaches a split's sends, and a path picked for it is still counted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from omnistream.domain.journey_stats import FIELDS, SEP, Cells
from omnistream.journey.checks import targets
from omnistream.journey.model import (
    AnyStep,
    BranchStep,
    ExitStep,
    Journey,
    SendStep,
    SplitStep,
    WaitForStep,
)

__all__ = ["NODE_WIDTH", "graph_model", "layered_layout", "step_cells"]

NODE_WIDTH: Final = 240
LINE_HEIGHT: Final = 16
LAYER_GAP: Final = 70
NODE_GAP: Final = 40

StepCells = dict[str, dict[str, dict[str, float]]]


def step_cells(cells: Cells) -> tuple[StepCells, StepCells]:
    """(step -> kind -> count, step -> channel -> outcome -> count ...) from window cells.

    The second mapping holds ``"send"`` (commands) next to the outcomes of each channel, and
    ``"path:<name>"`` -> count under the pseudo-channel ``"paths"`` for split steps."""
    kinds: StepCells = {}
    channels: StepCells = {}
    for cell, n in cells.get("n", {}).items():
        fields = dict(zip(FIELDS, cell.split(SEP), strict=True))
        step, kind = fields["step"] or "-", fields["kind"]
        by_kind = kinds.setdefault(step, {}).setdefault("kind", {})
        by_kind[kind] = by_kind.get(kind, 0) + n
        if kind in ("send", "outcome") and fields["channel"]:
            what = "send" if kind == "send" else fields["outcome"]
            _bump(channels.setdefault(step, {}), fields["channel"], what, n)
        if kind == "exited":  # the cell's outcome field holds the exit reason
            _bump(channels.setdefault(step, {}), "exits", fields["outcome"] or "-", n)
        if kind == "step" and fields["path"] and fields["control"] != "1":
            _bump(channels.setdefault(step, {}), "paths", fields["path"], n)
    return kinds, channels


def _bump(into: dict[str, dict[str, float]], group: str, name: str, n: float) -> None:
    inner = into.setdefault(group, {})
    inner[name] = inner.get(name, 0) + n


def _label(step: AnyStep) -> str:
    if isinstance(step, SendStep):
        return f"send {' → '.join(step.channels)} ({step.category})"
    if isinstance(step, WaitForStep):
        return f"wait for {step.event}"
    if isinstance(step, ExitStep):
        return f"exit: {step.reason}"
    return step.type.replace("_", " ")


def _edge_label(step: AnyStep, loc: tuple[int | str, ...]) -> str:
    if isinstance(step, WaitForStep):
        return step.event if loc == ("on_event",) else "timeout"
    if isinstance(step, BranchStep):
        return "else" if loc == ("else",) else step.branches[int(loc[1])].when.source
    if isinstance(step, SplitStep):
        path = step.paths[int(loc[1])]
        return f"{path.name} ({path.weight})"
    if isinstance(step, SendStep) and loc != ("next",):
        return str(loc[0]).removeprefix("on_").replace("_", " ")
    return ""


def _node(
    step: AnyStep, kinds: Mapping[str, float], channels: StepCells, live: Any
) -> dict[str, Any]:
    entered = int(kinds.get("step", 0))
    exited, goals = int(kinds.get("exited", 0)), int(kinds.get("goal", 0))
    waiting_now = live.get("waiting", 0) if live else 0
    paths = channels.get(step.id, {}).get("paths", {})
    total = sum(paths.values())
    return {
        "id": step.id,
        "type": step.type,
        "label": _label(step),
        "entered": entered,
        "waiting": int(waiting_now),
        "advanced": max(0, entered - exited - int(waiting_now)),
        "exited": exited,
        "goals": goals,
        "oldest_entered_at": live.get("oldest_entered_at") if live else None,
        "next_due": live.get("next_due") if live else None,
        "exit_reason": step.reason if isinstance(step, ExitStep) else None,
        "channels": {
            ch: {k: int(v) for k, v in sorted(outcomes.items())}
            for ch, outcomes in sorted(channels.get(step.id, {}).items())
            if ch not in ("paths", "exits")
        },
        "exits_by_reason": {
            reason: int(n)
            for reason, n in sorted(channels.get(step.id, {}).get("exits", {}).items())
        },
        "paths": {
            name: {"count": int(n), "percent": round(100 * n / total, 1) if total else None}
            for name, n in sorted(paths.items())
        },
    }


def graph_model(
    journey: Journey, cells: Cells, live: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Nodes (one per step, with figures) and edges (``target`` ``None``: the end)."""
    kinds, channels = step_cells(cells)
    nodes = [
        _node(step, kinds.get(step.id, {}).get("kind", {}), channels, live.get(step.id))
        for step in journey.steps
    ]
    edges = [
        {"source": step.id, "target": target, "label": _edge_label(step, loc)}
        for step in journey.steps
        if not isinstance(step, ExitStep)
        for loc, target in targets(step)
    ]
    for node in nodes:
        node["lines"] = node_lines(node)
        node["width"], node["height"] = NODE_WIDTH, LINE_HEIGHT * (len(node["lines"]) + 1)
    return {"journey_id": journey.id, "name": journey.name, "nodes": nodes, "edges": edges}


def node_lines(node: Mapping[str, Any]) -> list[str]:
    """The text lines drawn in a step's box (the SVG and the script draw the same)."""
    lines = [
        f"{node['id']}: {node['label']}",
        f"entered {node['entered']} · waiting {node['waiting']} · advanced {node['advanced']}",
    ]
    if node["exited"] or node["goals"]:
        reasons = ", ".join(f"{r} {n}" for r, n in node["exits_by_reason"].items())
        reason = f" ({reasons})" if reasons else ""
        lines.append(f"exits {node['exited']}{reason} · goals {node['goals']}")
    if node["waiting"] and node["next_due"]:
        lines.append(f"next due {node['next_due'][:16]}Z")
        lines.append(f"oldest entry {(node['oldest_entered_at'] or '')[:16]}Z")
    for channel, outcomes in node["channels"].items():
        lines.append(f"{channel}: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    for name, path in node["paths"].items():
        share = "-" if path["percent"] is None else f"{path['percent']}%"
        lines.append(f"path {name}: {path['count']} ({share})")
    return lines


def layered_layout(model: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Top-left corner per node by breadth-first depth from the first step.

    The server's own layout, so the page is readable (and testable) without JavaScript; in a
    browser, ``static/console.js`` lays the same nodes out again with elkjs."""
    nodes = {node["id"]: node for node in model["nodes"]}
    depth: dict[str, int] = {}
    order = [model["nodes"][0]["id"]] if model["nodes"] else []
    if order:
        depth[order[0]] = 0
    for current in order:
        for edge in model["edges"]:
            target = edge["target"]
            if edge["source"] == current and target in nodes and target not in depth:
                depth[target] = depth[current] + 1
                order.append(target)
    for node_id in nodes:  # unreachable from the first step (refused at load; be safe)
        depth.setdefault(node_id, max(depth.values(), default=-1) + 1)
    positions: dict[str, tuple[float, float]] = {}
    y = 0.0
    for layer in range(max(depth.values(), default=-1) + 1):
        members = [n for n in nodes if depth[n] == layer]
        for i, node_id in enumerate(members):
            positions[node_id] = (i * (NODE_WIDTH + NODE_GAP), y)
        y += max(nodes[n]["height"] for n in members) + LAYER_GAP if members else 0
    return positions
