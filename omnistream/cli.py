"""The ``omnistream`` command line (also ``python -m omnistream``)."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from datetime import datetime
from pathlib import Path

import click

from omnistream import __version__
from omnistream.clock import utcnow
from omnistream.config import Settings
from omnistream.domain.events import event_json_schema
from omnistream.domain.journey_events import journey_event_json_schema
from omnistream.domain.purchase_fit import History, fit, history_of
from omnistream.harness.cli import journeys
from omnistream.journey.loader import JourneyLoadError, load_catalog
from omnistream.journey.model import journey_json_schema
from omnistream.observability.logging import setup_logging
from omnistream.ops.cli import topics
from omnistream.ops.kafka_security import KafkaSecurity
from omnistream.ops.segments_cli import segments
from omnistream.policies.caps import CapsPolicyError, load_caps_policy
from omnistream.providers.errors import ProviderConfigError
from omnistream.runtime.admin import produce_forget
from omnistream.runtime.reload import StartRefused, starting_catalog
from omnistream.worker_settings import read_worker_settings

__all__ = ["cli", "main"]


def _load_catalog_or_exit(directory: Path):  # type: ignore[no-untyped-def]
    if not directory.is_dir():
        click.echo(f"{directory}: journeys directory does not exist", err=True)
        sys.exit(1)
    try:
        return load_catalog(directory)
    except JourneyLoadError as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        sys.exit(1)


def ensure_data_dir(path: Path) -> None:
    """Create the worker's data directory with its parents (Faust makes only the last level, so
    a fresh checkout or container crashed on ``var/worker``); a clear error if it cannot."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise click.ClickException(
            f"cannot create the data directory {path} (OMNISTREAM_DATA_DIR): {reason}"
        ) from None


@click.group()
@click.version_option(__version__, prog_name="omnistream")
def cli() -> None:
    """Event-streaming omnichannel customer journeys on Kafka."""


@cli.command()
def worker() -> None:
    """Run a worker (settings from OMNISTREAM_* environment variables)."""
    # Lazy on purpose: Faust and the runtime add about 0.35 s to every other command
    # (`omnistream --help` 0.8 s lazy, 1.2 s eager, 3 runs each; 0.24 s in process).
    import faust

    from omnistream.runtime.app import build_runtime

    try:  # read once, passed down; a bad provider setting: one line naming the variable, exit 1
        tree = read_worker_settings()
    except ProviderConfigError as exc:
        click.echo(f"omnistream worker: {exc}", err=True)
        sys.exit(1)
    settings = tree.core
    setup_logging(settings.log_level, tree.logs.format)
    if settings.event_loop == "uvloop":
        import mode.loop

        mode.loop.use("uvloop")  # before the app exists, so Faust and aiokafka run on it
    ensure_data_dir(settings.data_dir)
    try:  # bad files: one file:line each and exit 1, never a traceback (or a crash loop)
        catalog = starting_catalog(settings)
        load_caps_policy(tree.channels.caps_file)
    except (StartRefused, CapsPolicyError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    try:  # an unsafe or invalid provider setting: one line naming the variable, exit 1
        runtime = build_runtime(tree, catalog)
    except ProviderConfigError as exc:
        click.echo(f"omnistream worker: {exc}", err=True)
        sys.exit(1)
    tune_garbage_collector(settings.gc_gen0_threshold)
    faust.Worker(
        runtime.app, loglevel=settings.log_level, override_logging=False, quiet=True
    ).execute_from_commandline()


def tune_garbage_collector(gen0_threshold: int) -> None:
    """Collect the young generation every ``gen0_threshold`` allocations (0: never); the
    older generations keep Python's ratios (``OMNISTREAM_GC_GEN0_THRESHOLD``, config.py)."""
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)


@cli.command()
@click.option(
    "--journeys", "journeys_dir", type=click.Path(path_type=Path), default=Path("journeys")
)
@click.option("--rate", type=float, default=50.0, show_default=True, help="Demo events per second.")
@click.option("--customers", type=int, default=200, show_default=True)
@click.option("--interval", type=float, default=3.0, show_default=True, help="Seconds per summary.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--log-dir", type=click.Path(path_type=Path), default=Path("var/dev"))
def dev(
    journeys_dir: Path,
    rate: float,
    customers: int,
    interval: float,
    duration: float | None,
    log_dir: Path,
) -> None:
    """Embedded broker + Redis + worker + demo traffic, with a live summary."""
    # Lazy on purpose: dev-only code stays out of the worker's import path (no-dev-in-production).
    from omnistream.dev import DevOptions, run_dev

    _load_catalog_or_exit(journeys_dir)  # fail fast, before starting anything
    options = DevOptions(
        journeys_dir.resolve(), rate, customers, interval, duration, log_dir.resolve()
    )
    sys.exit(run_dev(options, echo=lambda line: click.echo(line)))


@cli.command("demo-traffic")
@click.option("--rate", type=float, default=50.0, show_default=True)
@click.option("--customers", type=int, default=200, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--limit", type=int, default=None, help="Stop after this many events.")
def demo_traffic(rate: float, customers: int, seed: int, limit: int | None) -> None:
    """Produce simulated customer traffic to the source topics."""
    # Lazy on purpose: demo traffic is dev-only (no-dev-in-production contract).
    from omnistream.sources.demo import run_demo_traffic

    if rate <= 0:
        raise click.BadParameter("must be positive", param_hint="--rate")
    try:
        sent = asyncio.run(run_demo_traffic(Settings(), rate, customers, seed, limit))
    except KeyboardInterrupt:
        return
    click.echo(f"produced {sent} events", err=True)


@cli.group()
def customers() -> None:
    """Customer operations."""


@customers.command("forget")
@click.argument("customer_id")
@click.option("--request-id", default=None, help="Idempotency id (default: derived from the id).")
def customers_forget(customer_id: str, request_id: str | None) -> None:
    """Right to erasure: remove the profile, identity links, timers and Redis keys."""

    event_id = asyncio.run(produce_forget(Settings(), customer_id, request_id, KafkaSecurity()))
    click.echo(f"forget request {event_id} queued for {customer_id}", err=True)


@cli.group()
def purchases() -> None:
    """The purchase-probability model (BG/NBD) behind p_alive() and expected_orders()."""


@purchases.command("fit")
@click.argument("profiles", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as-of", default=None, help="ISO time the export was taken (default: now).")
def purchases_fit(profiles: Path, as_of: str | None) -> None:
    """Fit r, alpha, a, b on exported profiles (JSON lines: a profile or a row with one).

    Prints the ``scores.purchase_model`` block for journeys/segments.yaml; unusable lines are
    reported as file:line on stderr and skipped.
    """
    when = utcnow() if as_of is None else _aware(as_of)
    histories, skipped = [], 0
    with profiles.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            history = _history_line(line, when)
            if isinstance(history, str):
                skipped += 1
                click.echo(f"{profiles}:{number}: {history}", err=True)
            elif history is not None:
                histories.append(history)
    if not histories:
        raise click.ClickException(f"{profiles}: no customer with an order to fit on")
    result = fit(histories)
    m = result.model
    click.echo(
        f"# {result.customers} customers, {skipped} lines skipped, as of "
        f"{when.isoformat()}; log-likelihood {result.log_likelihood:.3f}"
    )
    click.echo("scores:")
    click.echo(
        f"  purchase_model: {{r: {m.r:.6g}, alpha: {m.alpha:.6g}, a: {m.a:.6g}, b: {m.b:.6g}}}"
    )


def _aware(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        message = f"{text!r}: an ISO time with a zone, e.g. 2026-06-01T00:00:00+00:00"
        raise click.BadParameter(message, param_hint="--as-of")
    return when


def _history_line(line: str, as_of: datetime) -> History | str | None:
    """One export line as a BG/NBD history, an error message, or None (no orders)."""
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg} at column {exc.colno})"
    if isinstance(data, dict) and isinstance(data.get("profile"), dict):
        data = data["profile"]
    if not isinstance(data, dict):
        return "expected a JSON object (a profile, or a row with 'profile')"
    return history_of(data, as_of)


@cli.group()
def schema() -> None:
    """JSON Schemas for producers and editors."""


@schema.command("events")
def schema_events() -> None:
    """The event envelope."""
    click.echo(json.dumps(event_json_schema(), indent=2, sort_keys=True))


@schema.command("journey-events")
def schema_journey_events() -> None:
    """One omni.journey-events record (docs/journey-events.md)."""
    click.echo(json.dumps(journey_event_json_schema(), indent=2, sort_keys=True))


@schema.command("journeys")
def schema_journeys() -> None:
    """The journey YAML language (also in docs/journey.schema.json)."""

    click.echo(json.dumps(journey_json_schema(), indent=2, sort_keys=True))


def _mount_groups() -> None:
    """Author tools live next to the journey language, operator tools in ops/."""
    cli.add_command(journeys)
    cli.add_command(topics)
    cli.add_command(segments)  # segments count: an audience estimate from the workers


_mount_groups()


def main() -> None:
    cli()
