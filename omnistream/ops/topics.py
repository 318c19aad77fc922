"""Which topics production needs, and what to do about the ones that already exist (pure).

Faust creates missing topics itself, but with broker defaults: no ``min.insync.replicas``, the
broker's retention and, on a cluster with ``auto.create.topics.enable``, whatever partition count
the first producer happened to get. Production creates them up front, on purpose, with this plan.

The partition count of a keyed topic is part of the data, not a tuning knob: a record with key K
goes to partition ``murmur2(K) % N``. Change N and a customer's next events land in another
partition than their table row (which lives in the changelog partition of the same number), so
state and ordering split. That is why the plan refuses shrinking everywhere (Kafka cannot remove
partitions anyway) and growing the stateful topics; it allows growing the stateless ones, whose
consumers keep no per-key state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from omnistream.config import Settings

__all__ = [
    "DAY_MS",
    "TABLES",
    "Action",
    "ActionKind",
    "TopicPolicy",
    "TopicSpec",
    "TopicState",
    "changelog_topic",
    "desired_topics",
    "leader_topic",
    "plan",
]

TABLES = ("customers", "aliases", "broadcasts")
"""The Faust tables of ``runtime/app.py`` (``broadcasts``: progress of runtime/broadcasts.py);
each has a ``<app_id>-<table>-changelog`` topic."""
STATS_TABLES = ("journey-stats",)
"""Tables that exist only when ``OMNISTREAM_JOURNEY_EVENTS`` is on (the journey stats)."""

DAY_MS = 24 * 60 * 60 * 1000

SHRINK_WHY = (
    "Kafka cannot remove partitions, and a key's partition is murmur2(key) % N: with fewer "
    "partitions customers would move to other partitions{state}, and each customer's records "
    "would be split across two orders. Keep {have} partitions, or migrate deliberately (new "
    "app id and topic prefix, replay the sources)."
)
STATE_CLAUSE = " away from their table state (the changelog partition of the same number)"
GROW_STATEFUL_WHY = (
    "growing a co-partitioned stateful topic moves customers too (murmur2(key) % N changes): "
    "their next events would reach a worker that does not hold their state. Keep {have} "
    "partitions, or migrate deliberately (new app id and topic prefix, replay the sources)."
)


class ActionKind(StrEnum):
    CREATE = "create"
    OK = "ok"
    ALTER_CONFIG = "alter-config"
    INCREASE_PARTITIONS = "increase-partitions"
    REFUSED = "refused"


@dataclass(frozen=True)
class TopicPolicy:
    """Retention and durability choices; defaults suit a 3-broker cluster and a week of replay."""

    source_retention_ms: int = 7 * DAY_MS
    customer_events_retention_ms: int = 7 * DAY_MS
    send_retention_ms: int = 3 * DAY_MS
    dlq_retention_ms: int = 30 * DAY_MS
    journey_events_retention_ms: int = 7 * DAY_MS
    """Long enough for a warehouse sink to catch up after an outage; the stats live in their
    own table, so they do not need the records kept."""
    min_insync_replicas: int | None = None
    """``None``: a majority of the replicas, at most RF - 1 (so one broker may be down)."""

    def min_isr(self, replication_factor: int) -> int:
        if self.min_insync_replicas is not None:
            if not 1 <= self.min_insync_replicas <= replication_factor:
                raise ValueError(
                    f"min.insync.replicas={self.min_insync_replicas} must be between 1 and the "
                    f"replication factor {replication_factor}"
                )
            return self.min_insync_replicas
        return max(1, min(replication_factor - 1, replication_factor // 2 + 1))


@dataclass(frozen=True)
class TopicSpec:
    """One topic as production wants it."""

    name: str
    role: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]
    stateful: bool
    """Partition count bound to table state: never changed by this tool."""


@dataclass(frozen=True)
class TopicState:
    """One topic as the cluster has it."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] | None = None
    """Effective values; ``None`` when the broker cannot describe configs."""
    overrides: frozenset[str] = frozenset()
    """Config names set on the topic itself (kept when altering the others)."""


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    spec: TopicSpec
    detail: str = ""
    config_changes: Mapping[str, str] = field(default_factory=dict)
    current_partitions: int | None = None

    @property
    def changes_cluster(self) -> bool:
        return self.kind in (
            ActionKind.CREATE,
            ActionKind.ALTER_CONFIG,
            ActionKind.INCREASE_PARTITIONS,
        )


def changelog_topic(settings: Settings, table: str = TABLES[0]) -> str:
    return f"{settings.app_id}-{table}-changelog"


def leader_topic(settings: Settings) -> str:
    return f"{settings.app_id}-__assignor-__leader"


def desired_topics(settings: Settings, policy: TopicPolicy | None = None) -> list[TopicSpec]:
    """Every topic a worker with these settings reads or writes, with production configs."""
    policy = policy or TopicPolicy()
    rf = settings.replication_factor
    isr = str(policy.min_isr(rf))
    n = settings.partitions

    def spec(name: str, role: str, retention_ms: int | None, *, stateful: bool = False,
             partitions: int = n, compact: bool = False) -> TopicSpec:  # fmt: skip
        configs = {"min.insync.replicas": isr}
        configs["cleanup.policy"] = "compact" if compact else "delete"
        if retention_ms is not None:
            configs["retention.ms"] = str(retention_ms)
        return TopicSpec(name, role, partitions, rf, configs, stateful)

    specs = [spec(t, "source", policy.source_retention_ms) for t in settings.source_topics]
    specs.append(
        spec(
            settings.customer_events_topic,
            "customer-events",
            policy.customer_events_retention_ms,
            stateful=True,
        )
    )
    specs += [
        spec(settings.send_topic(ch), "send", policy.send_retention_ms) for ch in settings.channels
    ]
    specs.append(spec(settings.dlq_topic, "dlq", policy.dlq_retention_ms))
    if settings.journey_events:
        specs.append(
            spec(
                settings.journey_events_topic,
                "journey-events",
                policy.journey_events_retention_ms,
                stateful=True,  # the stats table keys name its partitions
            )
        )
    # Compacted, no retention: the changelogs are the source of truth of every table row.
    specs += [
        spec(changelog_topic(settings, table), "changelog", None, stateful=True, compact=True)
        for table in TABLES + (STATS_TABLES if settings.journey_events else ())
    ]
    specs.append(spec(leader_topic(settings), "faust-leader", None, stateful=True, partitions=1))
    return specs


def _plan_one(spec: TopicSpec, have: TopicState | None) -> list[Action]:
    if have is None:
        return [Action(ActionKind.CREATE, spec)]
    actions: list[Action] = []
    if have.partitions > spec.partitions:
        why = SHRINK_WHY.format(have=have.partitions, state=STATE_CLAUSE if spec.stateful else "")
        detail = f"{have.partitions} partitions, wanted {spec.partitions}: won't shrink. {why}"
        actions.append(Action(ActionKind.REFUSED, spec, detail, current_partitions=have.partitions))
    elif have.partitions < spec.partitions and spec.stateful:
        why = GROW_STATEFUL_WHY.format(have=have.partitions)
        detail = f"{have.partitions} partitions, wanted {spec.partitions}: refusing, {why}"
        actions.append(Action(ActionKind.REFUSED, spec, detail, current_partitions=have.partitions))
    elif have.partitions < spec.partitions:
        detail = (
            f"{have.partitions} -> {spec.partitions} partitions; allowed: consumers of a "
            f"{spec.role} topic keep no per-key state (keys re-map, records already written stay)"
        )
        actions.append(
            Action(ActionKind.INCREASE_PARTITIONS, spec, detail, current_partitions=have.partitions)
        )
    if have.replication_factor != spec.replication_factor:
        detail = (
            f"replication factor is {have.replication_factor}, wanted "
            f"{spec.replication_factor}: changing it means reassigning replicas "
            "(kafka-reassign-partitions.sh), which this tool does not do"
        )
        actions.append(Action(ActionKind.REFUSED, spec, detail))
    if have.configs is None:
        note = "configs not verified: the broker does not describe topic configs"
    else:
        changes = {k: v for k, v in spec.configs.items() if have.configs.get(k) != v}
        if changes:
            was = ", ".join(f"{k}={have.configs.get(k)} -> {v}" for k, v in changes.items())
            actions.append(Action(ActionKind.ALTER_CONFIG, spec, was, config_changes=changes))
        note = ""
    if not actions:
        actions.append(Action(ActionKind.OK, spec, note))
    return actions


def plan(
    settings: Settings, existing: Mapping[str, TopicState], policy: TopicPolicy | None = None
) -> list[Action]:
    """What to do, topic by topic, to get from ``existing`` to what production needs.

    Idempotent by construction: applied once, a second plan is all ``ok``. A topic may get more
    than one action (refused partitions and drifted configs are independent findings).
    """
    actions: list[Action] = []
    for spec in desired_topics(settings, policy):
        actions.extend(_plan_one(spec, existing.get(spec.name)))
    return actions
