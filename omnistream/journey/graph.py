"""A journey as a Mermaid flowchart, for review in pull requests (GitHub renders Mermaid)."""

from __future__ import annotations

from datetime import timedelta

from omnistream.journey.checks import targets
from omnistream.journey.model import (
    BEST,
    AnyStep,
    BranchStep,
    ComputedDuration,
    ExitStep,
    Journey,
    SendStep,
    SplitStep,
    UpdateProfileStep,
    WaitForStep,
    WaitStep,
)

__all__ = ["mermaid"]


def _duration(value: timedelta | ComputedDuration) -> str:
    if isinstance(value, ComputedDuration):
        return value.source
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _quote(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def _node(step: AnyStep) -> str:
    if isinstance(step, SendStep):
        joiner = " + " if step.together else " → "
        label = f"{step.id}: send {joiner.join(step.channels)} ({step.category})"
        if step.together:
            label += ", together as one touch"
        fallback = step.engagement_fallback
        if fallback is not None:
            windows = [f"{c} {_duration(fallback.window(c))}" for c in step.channels if c != BEST]
            label += f", next channel if no open in {' / '.join(windows)}"
        return f"{step.id}[{_quote(label)}]"
    if isinstance(step, WaitStep):
        if step.duration is not None:
            what = _duration(step.duration)
        elif step.until is not None:
            what = f"until {step.until:%H:%M} local" + (
                f" {','.join(step.days)}" if step.days else ""
            )
        else:
            assert step.window is not None
            what = f"window {','.join(step.window.days)} from {step.window.start:%H:%M}"
        return f"{step.id}[/{_quote(f'{step.id}: wait {what}')}/]"
    if isinstance(step, WaitForStep):
        label = f"{step.id}: wait for {step.event} up to {_duration(step.timeout)}"
        return f"{step.id}{{{{{_quote(label)}}}}}"
    if isinstance(step, BranchStep | SplitStep):
        return f"{step.id}{{{_quote(f'{step.id}: {step.type}')}}}"
    if isinstance(step, UpdateProfileStep):
        return f"{step.id}[({_quote(f'{step.id}: update profile')})]"
    assert isinstance(step, ExitStep)
    return f"{step.id}(({_quote(f'exit: {step.reason}')}))"


def _edge_label(step: AnyStep, loc: tuple[int | str, ...]) -> str:
    if isinstance(step, WaitForStep):
        return step.event if loc == ("on_event",) else "timeout"
    if isinstance(step, BranchStep):
        if loc == ("else",):
            return "else"
        return step.branches[int(loc[1])].when.source
    if isinstance(step, SplitStep):
        path = step.paths[int(loc[1])]
        return f"{path.name} {path.weight}"
    if isinstance(step, SendStep) and loc != ("next",):
        return str(loc[0]).removeprefix("on_").replace("_", " ")
    return ""


def mermaid(journey: Journey) -> str:
    """The flowchart text: trigger, every step, every edge; a missing target is the end."""
    trigger = journey.trigger
    if trigger.date is not None:
        start = f"{trigger.date.trait} at {trigger.date.at:%H:%M} local"
    elif trigger.segment_entered is not None:
        start = f"entered segment {trigger.segment_entered}"
    elif trigger.attribute_changed is not None:
        start = f"{trigger.attribute_changed.path} changed"
    elif trigger.schedule is not None:
        start = f"broadcast to {trigger.audience or 'everyone'}"
    else:
        start = str(trigger.event) + (f" + {_duration(trigger.after)}" if trigger.after else "")
    lines = [
        "flowchart TD",
        f"    start([{_quote(f'{journey.name}: {start}')}]) --> {journey.first_step.id}",
    ]
    needs_end = False
    for step in journey.steps:
        lines.append(f"    {_node(step)}")
        if isinstance(step, ExitStep):
            continue
        for loc, target in targets(step):
            label = _edge_label(step, loc)
            arrow = f"-- {_quote(label)} -->" if label else "-->"
            lines.append(f"    {step.id} {arrow} {target or 'finish'}")
            needs_end = needs_end or target is None
    if needs_end:
        lines.append("    finish((end))")
    return "\n".join(lines) + "\n"
