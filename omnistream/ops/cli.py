"""``omnistream topics plan|create``: production topics, created on purpose and idempotently.

Run ``create`` once before the first worker starts (the Compose ``topics`` job and a Kubernetes
Job do), and again after changing settings: it creates what is missing, aligns configs, grows
stateless topics, and changes nothing at all when any step is refused (a refused plan is a
decision for a person, not something to half-apply).

Exit codes: 0 done / nothing to do, 1 refused or the broker rejected a change, 2 bad settings or
no connection.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError

from omnistream.config import Settings
from omnistream.ops.kafka_admin import (
    TopicAdminError,
    apply_actions,
    bootstrap_servers,
    describe_cluster_topics,
)
from omnistream.ops.kafka_security import KafkaSecurity
from omnistream.ops.topics import DAY_MS, Action, ActionKind, TopicPolicy, desired_topics, plan

__all__ = ["format_action", "topics"]


@dataclass
class _Outcome:
    actions: list[Action]
    notes: list[str]
    applied: list[Action]
    error: str | None = None


def format_action(action: Action) -> str:
    spec = action.spec
    head = f"{action.kind.value:<20} {spec.name}"
    if action.kind is ActionKind.CREATE:
        configs = " ".join(f"{k}={v}" for k, v in sorted(spec.configs.items()))
        head += f"  partitions={spec.partitions} replication={spec.replication_factor} {configs}"
    return f"{head}\n{'':<21}{action.detail}" if action.detail else head


async def _run(
    settings: Settings, admin_kwargs: dict[str, Any], policy: TopicPolicy, apply: bool
) -> _Outcome:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers(settings.broker),
        client_id=f"{settings.app_id}-topics",
        **admin_kwargs,
    )
    try:
        await admin.start()
        names = [spec.name for spec in desired_topics(settings, policy)]
        states, notes = await describe_cluster_topics(admin, names)
        actions = plan(settings, states, policy)
        outcome = _Outcome(actions, notes, [])
        if apply and not any(a.kind is ActionKind.REFUSED for a in actions):
            try:
                outcome.applied = await apply_actions(admin, actions, states)
            except TopicAdminError as exc:
                outcome.error = str(exc)
                outcome.applied = list(exc.applied)
        return outcome
    finally:
        await admin.close()


def _policy(
    retention_days: float, send_days: float, dlq_days: float, min_isr: int | None
) -> TopicPolicy:
    def ms(days: float) -> int:
        return int(days * DAY_MS)

    return TopicPolicy(
        source_retention_ms=ms(retention_days),
        customer_events_retention_ms=ms(retention_days),
        send_retention_ms=ms(send_days),
        dlq_retention_ms=ms(dlq_days),
        min_insync_replicas=min_isr,
    )


def _execute(policy: TopicPolicy, apply: bool, dry_run: bool) -> None:
    try:
        settings = Settings()
        admin_kwargs = KafkaSecurity().aiokafka_kwargs()  # also loads the TLS files
        policy.min_isr(settings.replication_factor)
    except (ValidationError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    try:
        outcome = asyncio.run(_run(settings, admin_kwargs, policy, apply and not dry_run))
    except (KafkaConnectionError, OSError) as exc:
        click.echo(f"error: cannot reach {settings.broker}: {exc}", err=True)
        sys.exit(2)
    _report(outcome, apply, dry_run)


def _report(outcome: _Outcome, apply: bool, dry_run: bool) -> None:
    for action in outcome.actions:
        click.echo(format_action(action))
    for note in outcome.notes:
        click.echo(f"note: {note}")
    refused = [a for a in outcome.actions if a.kind is ActionKind.REFUSED]
    pending = [a for a in outcome.actions if a.changes_cluster]
    if refused:
        click.echo(f"refused: {len(refused)} finding(s) above need a decision; nothing changed")
        sys.exit(1)
    if outcome.error:
        click.echo(f"error: {outcome.error}", err=True)
        if outcome.applied:
            done = ", ".join(f"{a.kind.value} {a.spec.name}" for a in outcome.applied)
            click.echo(f"applied before the error: {done}", err=True)
        sys.exit(1)
    if not pending:
        click.echo("nothing to do: every topic matches the plan")
    elif apply and not dry_run:
        click.echo(f"applied {len(outcome.applied)} change(s)")
    else:
        verb = "dry run: would apply" if dry_run else "to apply"
        click.echo(f"{verb} {len(pending)} change(s) with `omnistream topics create`")


def _policy_options(command: Callable[..., None]) -> Callable[..., None]:
    """The retention and durability options shared by ``plan`` and ``create``."""
    options = [
        click.option(
            "--retention-days", type=float, default=7.0, show_default=True,
            help="Retention of the source topics and omni.customer-events (replay window).",
        ),
        click.option(
            "--send-retention-days", type=float, default=3.0, show_default=True,
            help="Retention of the omni.send.<channel> topics.",
        ),
        click.option(
            "--dlq-retention-days", type=float, default=30.0, show_default=True,
            help="Retention of the dead-letter topic (time to inspect and replay).",
        ),
        click.option(
            "--min-insync-replicas", type=click.IntRange(min=1), default=None,
            help="Default: a majority of the replicas, at most replication factor - 1.",
        ),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


@click.group()
def topics() -> None:
    """Kafka topics for production (settings from OMNISTREAM_* and OMNISTREAM_KAFKA_*)."""


@topics.command("plan")
@_policy_options
def plan_command(
    retention_days: float,
    send_retention_days: float,
    dlq_retention_days: float,
    min_insync_replicas: int | None,
) -> None:
    """Show what `create` would do; change nothing."""
    policy = _policy(retention_days, send_retention_days, dlq_retention_days, min_insync_replicas)
    _execute(policy, apply=False, dry_run=False)


@topics.command("create")
@click.option("--dry-run", is_flag=True, help="Plan and print, change nothing.")
@_policy_options
def create_command(
    dry_run: bool,
    retention_days: float,
    send_retention_days: float,
    dlq_retention_days: float,
    min_insync_replicas: int | None,
) -> None:
    """Create missing topics, align configs, grow stateless topics; idempotent."""
    policy = _policy(retention_days, send_retention_days, dlq_retention_days, min_insync_replicas)
    _execute(policy, apply=True, dry_run=dry_run)
