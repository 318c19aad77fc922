"""``journeys simulate`` and ``journeys test``: the author commands that run the harness.

They join the ``journeys`` group of ``omnistream.journey.cli`` here, not there, because the
journey package is the pure core and must not import the harness (it runs the worker's agent
functions); the main CLI mounts the group from this module.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from omnistream.harness.scenarios import run_on_harness
from omnistream.harness.simulate import simulate_on_harness
from omnistream.journey.cli import (
    _DIR,
    _catalog,
    _fail,
    _journey_catalog,
    _read_events,
    journeys,
)
from omnistream.journey.loader import JourneyLoadError, read_text, read_yaml
from omnistream.journey.model import Catalog
from omnistream.journey.scenarios import Scenario, check, delivery_line, load_scenario
from omnistream.journey.simulate import Simulation

__all__ = ["journeys"]


@journeys.command(name="simulate")
@click.argument("journey_id")
@click.option(
    "--events",
    "events_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="JSON Lines: one event envelope per line (event_id, source, customer id optional).",
)
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Starting profile (JSON or YAML).",
)
@click.option("--customer", default="customer-1", show_default=True, help="Customer key.")
@_DIR
def simulate_command(
    journey_id: str,
    events_path: Path,
    profile_path: Path | None,
    customer: str,
    directory: Path,
) -> None:
    """Run JOURNEY_ID on the in-process harness over --events and print the timeline."""
    catalog = _journey_catalog(directory, journey_id)
    profile: Any = None
    if profile_path is not None:
        try:
            profile, _ = read_yaml(read_text(profile_path), str(profile_path))
        except JourneyLoadError as exc:
            _fail([str(e) for e in exc.errors])
    try:
        result = simulate_on_harness(
            catalog, _read_events(events_path), profile=profile, customer_key=customer
        )
    except ValueError as exc:
        _fail([f"{events_path}: {exc}"])
    click.echo(result.render())
    click.echo(
        f"-- {len(result.sends)} send(s), {len(result.exits)} exit(s), {len(result.goals)} goal(s)"
    )


def _expected_lines(scenario: Scenario) -> list[str]:
    sends = [f"send {s.at.isoformat()} {s.step} {s.channel}" for s in scenario.expect.sends]
    exits = [f"exit {e.at.isoformat()} {e.reason}" for e in scenario.expect.exits]
    deliveries = [
        "deliver " + delivery_line(d.at, d.step, d.channel, d.outcome, d.reason)
        for d in scenario.expect.deliveries or ()
    ]
    return sends + exits + deliveries


def _actual_lines(scenario: Scenario, result: Simulation) -> list[str]:
    sends = [f"send {s.at.isoformat()} {s.step_id} {s.channel}" for s in result.sends]
    exits = [f"exit {at.isoformat()} {reason}" for at, _, reason in result.exits]
    deliveries = [f"deliver {delivery_line(*d)}" for d in result.deliveries]
    return sends + exits + (deliveries if scenario.expect.deliveries is not None else [])


def _run_one(catalog: Catalog, path: Path) -> bool:
    """Run one scenario file; print PASS, or FAIL with the problems, a diff and the timeline."""
    try:
        scenario = load_scenario(path)
    except (JourneyLoadError, ValidationError, OSError) as exc:
        click.echo(f"FAIL {path}: cannot load the scenario: {exc}")
        return False
    if scenario.journey not in catalog.journeys:
        click.echo(f"FAIL {path}: unknown journey {scenario.journey!r}")
        return False
    result = run_on_harness(catalog, scenario)
    problems = check(scenario, result)
    if not problems:
        click.echo(f"PASS {path}")
        return True
    click.echo(f"FAIL {path}")
    for problem in problems:
        click.echo(f"  {problem}")
    expected, actual = _expected_lines(scenario), _actual_lines(scenario, result)
    diff = difflib.unified_diff(expected, actual, "expected", "actual", lineterm="")
    for line in diff:
        click.echo(f"  {line}")
    click.echo("  --- timeline ---")
    for line in result.render().splitlines():
        click.echo(f"  {line}")
    return False


@journeys.command(name="test")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_DIR
def test_command(files: tuple[Path, ...], directory: Path) -> None:
    """Run scenario FILES (default: DIR/scenarios/*.yaml) on the harness; exit 1 on a failure."""
    catalog = _catalog(directory)
    paths = list(files) or sorted((directory / "scenarios").glob("*.yaml"))
    if not paths:
        _fail([f"{directory / 'scenarios'}: no scenario files"])
    failed = sum(1 for path in paths if not _run_one(catalog, path))
    click.echo(f"-- {len(paths) - failed} passed, {failed} failed")
    if failed:
        raise SystemExit(1)
