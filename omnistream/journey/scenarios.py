"""Golden scenarios: events in, expected sends and exits out, checked like code in CI.

A scenario file (journeys/scenarios/*.yaml) names a journey, a starting profile, the events and
what must come out::

    journey: abandoned_cart
    customer: c-1001
    profile: {traits: {first_name: Olena}}
    events:
      - {type: cart_updated, timestamp: "2026-03-02T10:00:00Z", properties: {...}}
    expect:
      sends:
        - {at: "2026-03-02T11:00:00Z", step: push_reminder, channel: mobile_push,
           contains: "Air Max"}
      exits:
        - {at: "2026-03-03T15:00:00Z", reason: purchased}

Sends and exits are compared in order and in full (a missing or an extra one fails); ``contains``
is a substring of the subject or the body. With ``delivery:`` (provider failures per channel,
caps) the harness runs the channel agents too, and ``expect.deliveries`` lists what each channel
did with each send (``sent``, ``failed``, ``suppressed``, ``fallback``, with the reason), in order.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from omnistream.journey.loader import read_yaml
from omnistream.journey.model import Catalog
from omnistream.journey.simulate import Simulation, simulate
from omnistream.policies.caps import CapsPolicy

__all__ = [
    "ExpectedDelivery",
    "ExpectedExit",
    "ExpectedSend",
    "Scenario",
    "ScenarioDelivery",
    "check",
    "delivery_line",
    "load_scenario",
    "run_scenario",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedSend(_Strict):
    at: datetime
    step: str
    channel: str
    contains: str | None = None
    addresses: dict[str, str] | None = None
    """When given, the addresses the send carries, exactly: a channel left out is one the
    dispatcher skips (``no_address``) without calling its provider."""


class ExpectedExit(_Strict):
    at: datetime
    reason: str


class ExpectedDelivery(_Strict):
    at: datetime
    step: str
    channel: str
    outcome: Literal["sent", "failed", "suppressed", "fallback"]
    reason: str | None = None


class Expectations(_Strict):
    sends: tuple[ExpectedSend, ...] = ()
    exits: tuple[ExpectedExit, ...] = ()
    goals: int | None = None
    deliveries: tuple[ExpectedDelivery, ...] | None = None
    """Checked only when given (and only meaningful with a ``delivery`` model)."""


class ScenarioDelivery(_Strict):
    """The channel agents' world: permanent provider failures per channel, and the caps."""

    fail: dict[str, str] = Field(default_factory=dict)
    caps: CapsPolicy = Field(default_factory=CapsPolicy)


class Scenario(_Strict):
    journey: str
    description: str = ""
    customer: str = "customer-1"
    profile: dict[str, Any] = Field(default_factory=dict)
    events: tuple[dict[str, Any], ...] = ()
    until: datetime | None = None
    delivery: ScenarioDelivery | None = None
    expect: Expectations


def load_scenario(path: Path) -> Scenario:
    data, _ = read_yaml(path.read_text(encoding="utf-8"), str(path))
    if isinstance(data, dict):
        for event in data.get("events") or ():
            if isinstance(event, dict) and isinstance(event.get("timestamp"), datetime):
                event["timestamp"] = event["timestamp"].isoformat()
    return Scenario.model_validate(data)


def run_scenario(catalog: Catalog, scenario: Scenario) -> Simulation:
    return simulate(
        catalog.only(scenario.journey),
        scenario.events,
        profile=scenario.profile,
        customer_key=scenario.customer,
        until=scenario.until,
    )


def check(scenario: Scenario, result: Simulation) -> list[str]:
    """Human-readable differences between what was expected and what happened (empty = pass)."""
    problems: list[str] = []
    sends = result.sends
    expected = scenario.expect.sends
    for i in range(max(len(sends), len(expected))):
        if i >= len(sends):
            problems.append(f"send #{i + 1} missing: expected {expected[i].model_dump()}")
            continue
        got = sends[i]
        if i >= len(expected):
            problems.append(f"unexpected send #{i + 1}: {got.step_id} {got.channel} at {got.at}")
            continue
        want = expected[i]
        if (want.at, want.step, want.channel) != (got.at, got.step_id, got.channel):
            problems.append(
                f"send #{i + 1}: expected {want.step} {want.channel} at {want.at.isoformat()}, "
                f"got {got.step_id} {got.channel} at {got.at.isoformat()}"
            )
        text = f"{got.subject or ''}\n{got.body}"
        if want.contains is not None and want.contains not in text:
            problems.append(f"send #{i + 1}: {want.contains!r} not in {text!r}")
        if want.addresses is not None and want.addresses != dict(got.send.addresses):
            problems.append(
                f"send #{i + 1}: addresses {sorted(got.send.addresses)}, "
                f"expected {sorted(want.addresses)}"
            )
    exits = [(at, reason) for at, _, reason in result.exits]
    wanted_exits = [(e.at, e.reason) for e in scenario.expect.exits]
    if exits != wanted_exits:
        problems.append(f"exits: expected {_fmt(wanted_exits)}, got {_fmt(exits)}")
    goals = scenario.expect.goals
    if goals is not None and goals != len(result.goals):
        problems.append(f"goals: expected {goals}, got {len(result.goals)}")
    problems += _delivery_problems(scenario, result)
    return problems


def _delivery_problems(scenario: Scenario, result: Simulation) -> list[str]:
    if scenario.expect.deliveries is None:
        return []
    wanted = [
        delivery_line(d.at, d.step, d.channel, d.outcome, d.reason)
        for d in scenario.expect.deliveries
    ]
    actual = [delivery_line(*d) for d in result.deliveries]
    return [] if wanted == actual else [f"deliveries: expected {wanted}, got {actual}"]


def delivery_line(at: datetime, step: str, channel: str, outcome: str, reason: str | None) -> str:
    """One delivery as compared and diffed: ``<time> <step> <channel> <outcome>[ <reason>]``."""
    return " ".join([at.isoformat(), step, channel, outcome, *([reason] if reason else [])])


def _fmt(exits: list[tuple[datetime, str]]) -> str:
    return "[" + ", ".join(f"{reason}@{at.isoformat()}" for at, reason in exits) + "]"
