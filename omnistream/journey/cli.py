"""Author tools: ``omnistream journeys validate | graph`` (``simulate`` and ``test`` run the
in-process harness and join this group in ``omnistream/harness/cli.py``).

The main CLI mounts this group from there. Errors go to stderr as
``file:line: message (hint)`` and the exit code is 1, so the commands fit CI and editors.
The journeys directory defaults to ``OMNISTREAM_JOURNEYS_DIR`` (environment or ``.env``, as the
worker reads it), so ``validate`` checks the files the worker will load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic_settings import BaseSettings

from omnistream.config import Settings
from omnistream.journey.expr import suggest
from omnistream.journey.graph import mermaid
from omnistream.journey.loader import JourneyLoadError, load_catalog
from omnistream.journey.model import Catalog

__all__ = ["journeys"]


class _JourneysDir(BaseSettings):
    """Only the worker's ``journeys_dir`` setting: an unrelated bad variable must not stop an
    author's ``validate``."""

    model_config = Settings.model_config
    journeys_dir: Path = Settings.model_fields["journeys_dir"].default


def _default_dir() -> Path:
    return _JourneysDir().journeys_dir


_DIR_DEFAULT = "$OMNISTREAM_JOURNEYS_DIR or journeys"
_DIR = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=_default_dir,
    show_default=_DIR_DEFAULT,
    help="Directory with the journey files.",
)


def _fail(lines: list[str]) -> NoReturn:
    for line in lines:
        click.echo(line, err=True)
    raise SystemExit(1)


def _catalog(directory: Path) -> Catalog:
    if not directory.is_dir():
        _fail([f"{directory}: journeys directory does not exist"])
    try:
        return load_catalog(directory)
    except JourneyLoadError as exc:
        _fail([str(e) for e in exc.errors] + [f"{len(exc.errors)} error(s)"])


def _journey_catalog(directory: Path, journey_id: str) -> Catalog:
    catalog = _catalog(directory)
    if journey_id not in catalog.journeys:
        hint = suggest(journey_id, catalog.journeys)
        _fail([f"{directory}: no journey {journey_id!r}" + (f" ({hint})" if hint else "")])
    return catalog.only(journey_id)


@click.group()
def journeys() -> None:
    """Check, draw and simulate journeys before they go live."""


@journeys.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=_default_dir)
def validate(directory: Path) -> None:
    """Load every journey in DIRECTORY strictly; exit 1 on any error.

    DIRECTORY defaults to $OMNISTREAM_JOURNEYS_DIR, else journeys."""
    catalog = _catalog(directory)
    for journey in sorted(catalog.journeys.values(), key=lambda j: j.id):
        click.echo(f"ok  {journey.id:<28} {journey.status:<7} version {journey.version}")
    click.echo(f"{len(catalog.journeys)} journey(s) valid")


@journeys.command()
@click.argument("journey_id")
@_DIR
def graph(journey_id: str, directory: Path) -> None:
    """Print JOURNEY_ID as a Mermaid flowchart."""
    catalog = _journey_catalog(directory, journey_id)
    click.echo(mermaid(catalog.journeys[journey_id]), nl=False)


def _read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            _fail([f"{path}:{number}: invalid JSON: {exc.msg}"])
        if not isinstance(value, dict) or "timestamp" not in value:
            _fail([f"{path}:{number}: each line must be an event object with a timestamp"])
        events.append(value)
    return events
