"""``exit_on`` and ``goal`` end an instance in every waiting state (issue 18).

A purchase while the push waits for the morning (quiet hours), outside the send window, in an
engagement window, waiting for the delivery outcome, in a ``wait`` or a ``wait_for``: the
instance ends at once and nothing is sent afterwards, whatever timers were pending.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from omnistream.domain.commands import Emit
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from tests.unit.journey.helpers import T0, catalog_of, ev, fire_next, hours, sends

HEAD = """
id: w
name: Waiting
trigger: {event: x}
exit_on: [stop]
goal: {event: bought}
"""
SEND = "{id: s, type: send, channels: [email, sms], content: {email: {body: e}, sms: {body: s}}"
NOW = SEND.replace("type: send,", "type: send, category: transactional,")  # not held
STATES = {
    "quiet_hold": f"steps: [{SEND}}}]",
    "send_window_hold": (
        "policies: {quiet_hours: null, send_window: {days: [sat], start: '10:00', end: '12:00'}}\n"
        f"steps: [{SEND}}}]"
    ),
    "engagement_window": f"steps: [{NOW}, engagement_fallback: {{within: 1d}}}}]",
    "outcome_wait": f"steps: [{NOW}, on_sent: t, on_failed: t}}, {{id: t, type: exit}}]",
    "wait": f"steps: [{{id: a, type: wait, duration: 2d, next: s}}, {SEND}}}]",
    "wait_for": (
        "steps: [{id: a, type: wait_for, event: y, timeout: 2d, on_event: s, on_timeout: s},"
        f" {SEND}}}]"
    ),
}
POLICIES = "default_timezone: Europe/Kyiv\nquiet_hours: {start: '21:00', end: '09:00'}\n"
LATE = T0.replace(hour=20)  # 22:00 in Kyiv, a Monday: inside quiet hours


@pytest.mark.parametrize("waiting", STATES)
@pytest.mark.parametrize(("event", "reason"), [("stop", "exit_event"), ("bought", "goal")])
def test_exit_and_goal_end_every_waiting_state(
    tmp_path: Path, waiting: str, event: str, reason: str
) -> None:
    catalog = catalog_of(tmp_path, HEAD + STATES[waiting], policies=POLICIES)
    state, commands = step(catalog, CustomerState(key="c1"), ev("x", LATE), LATE)
    assert state.instances and state.timers, "the instance must be waiting"
    before = len(sends(commands))
    assert before == (1 if waiting in ("engagement_window", "outcome_wait") else 0)
    at = LATE + hours(0.5)
    state, commands = step(catalog, state, ev(event, at), at)
    exits = [c.reason for c in commands if isinstance(c, Emit) and c.name == "journey_exited"]
    assert exits == [reason] and not state.instances and not state.timers
    assert not sends(commands)
    while state.timers:  # nothing left to fire; kept as a guard against stray timers
        state, commands = fire_next(catalog, state)
        assert not sends(commands)
