"""Graph checks a schema cannot express: step targets, reachability and instant loops.

A loop is fine when something on it waits (``wait``, ``wait_for`` or a send that waits for an
engagement window or its delivery outcome); a loop of instant steps would spin the engine on one
event, so it is a load error.
Each problem comes back as ``(location, message, hint)`` for the loader to turn into file:line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from omnistream.journey.expr import suggest
from omnistream.journey.model import (
    OUTCOME_EDGES,
    AnyStep,
    BranchStep,
    Journey,
    SendStep,
    SplitStep,
    WaitForStep,
    WaitStep,
)

__all__ = ["Problem", "check_graph", "is_pausing", "targets"]

Loc = tuple[int | str, ...]
Problem = tuple[Loc, str, str | None]
_MAX_STEPS: Final = 500


def targets(step: AnyStep) -> Iterator[tuple[Loc, str | None]]:
    """Every outgoing edge of ``step`` as (location inside the step, target id or None=end)."""
    if isinstance(step, WaitForStep):
        yield ("on_event",), step.on_event
        yield ("on_timeout",), step.on_timeout
    elif isinstance(step, BranchStep):
        for i, case in enumerate(step.branches):
            yield ("branches", i, "next"), case.next
        yield ("else",), step.otherwise
    elif isinstance(step, SplitStep):
        for i, path in enumerate(step.paths):
            yield ("paths", i, "next"), path.next
    elif isinstance(step, SendStep):
        yield ("next",), step.next
        for edge in OUTCOME_EDGES:
            if getattr(step, edge) is not None:
                yield (edge,), getattr(step, edge)
    else:
        yield ("next",), getattr(step, "next", None)


def is_pausing(step: AnyStep) -> bool:
    """Does entering this step always park the instance on a timer (breaking instant loops)?"""
    if isinstance(step, WaitStep | WaitForStep):
        return True
    return isinstance(step, SendStep) and step.waits


def check_graph(journey: Journey) -> list[Problem]:
    problems: list[Problem] = []
    if len(journey.steps) > _MAX_STEPS:
        problems.append((("steps",), f"more than {_MAX_STEPS} steps", None))
    index: dict[str, int] = {}
    for i, step in enumerate(journey.steps):
        if step.id in index:
            problems.append((("steps", i, "id"), f"duplicate step id {step.id!r}", None))
        index.setdefault(step.id, i)
    edges: dict[str, list[str]] = {}
    for i, step in enumerate(journey.steps):
        out = edges.setdefault(step.id, [])
        for loc, target in targets(step):
            if target is None:
                continue
            if target not in index:
                problems.append(
                    (("steps", i, *loc), f"unknown step {target!r}", suggest(target, index))
                )
            elif target not in out:
                out.append(target)
    seen = {journey.steps[0].id}
    todo = [journey.steps[0].id]
    while todo:
        for target in edges.get(todo.pop(), []):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for i, step in enumerate(journey.steps):
        if step.id not in seen:
            problems.append(
                (("steps", i, "id"), f"step {step.id!r} is unreachable from the first step", None)
            )
    problems.extend(_instant_loops(journey, index, edges))
    return problems


def _instant_loops(
    journey: Journey, index: dict[str, int], edges: dict[str, list[str]]
) -> list[Problem]:
    """Cycles made only of steps that never pause (iterative DFS, colours white/grey/black)."""
    instant = [s.id for s in journey.steps if not is_pausing(s)]
    colour: dict[str, int] = {}
    problems: list[Problem] = []
    reported: set[frozenset[str]] = set()
    for root in instant:
        if colour.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(edges.get(root, [])))]
        path = [root]
        colour[root] = 1
        while stack:
            node, children = stack[-1]
            child = next((c for c in children if c in instant), None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(child) == 1:
                cycle = [*path[path.index(child) :], child]
                if frozenset(cycle) in reported:
                    continue
                reported.add(frozenset(cycle))
                problems.append(
                    (
                        ("steps", index[child], "id"),
                        "loop without a wait: " + " -> ".join(cycle),
                        "put a wait or wait_for step on the loop",
                    )
                )
            elif not colour.get(child):
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(edges.get(child, []))))
    return problems
