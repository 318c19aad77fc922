"""The topic plan (pure): what production needs, and what it refuses to change."""

from __future__ import annotations

import faust
import pytest

from omnistream.config import Settings
from omnistream.journey.model import Catalog
from omnistream.ops.kafka_admin import bootstrap_servers
from omnistream.ops.topics import (
    Action,
    ActionKind,
    TopicPolicy,
    TopicState,
    changelog_topic,
    desired_topics,
    plan,
)


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"app_id": "prod", "partitions": 12, "replication_factor": 3}
    values.update(overrides)
    return Settings.model_validate(values)


def as_existing(s: Settings, policy: TopicPolicy | None = None) -> dict[str, TopicState]:
    """The cluster after a successful ``create``."""
    return {
        t.name: TopicState(t.name, t.partitions, t.replication_factor, dict(t.configs))
        for t in desired_topics(s, policy)
    }


def by_topic(actions: list[Action]) -> dict[str, list[ActionKind]]:
    out: dict[str, list[ActionKind]] = {}
    for action in actions:
        out.setdefault(action.spec.name, []).append(action.kind)
    return out


def test_empty_cluster_creates_every_topic_with_production_configs() -> None:
    s = settings()
    actions = plan(s, {})
    assert {a.kind for a in actions} == {ActionKind.CREATE}
    specs = {a.spec.name: a.spec for a in actions}
    expected = {
        *s.source_topics,
        s.customer_events_topic,
        s.dlq_topic,
        *(s.send_topic(ch) for ch in s.channels),
        s.journey_events_topic,
        "prod-customers-changelog",
        "prod-aliases-changelog",
        "prod-broadcasts-changelog",
        "prod-journey-stats-changelog",
        "prod-__assignor-__leader",
    }
    assert set(specs) == expected
    assert specs[s.journey_events_topic].stateful  # stats keys name their partition
    without = {spec.name for spec in desired_topics(settings(journey_events=False))}
    assert without == expected - {s.journey_events_topic, "prod-journey-stats-changelog"}
    for table in ("customers", "aliases", "broadcasts"):
        changelog = specs[f"prod-{table}-changelog"]
        assert changelog.configs["cleanup.policy"] == "compact"
        assert "retention.ms" not in changelog.configs  # compacted rows must never expire
        assert changelog.stateful
    assert specs["omni.events.site"].configs["cleanup.policy"] == "delete"
    assert specs["omni.dlq"].configs["retention.ms"] == str(30 * 24 * 3600 * 1000)
    assert specs["prod-__assignor-__leader"].partitions == 1
    for spec in specs.values():
        assert spec.replication_factor == 3
        assert spec.configs["min.insync.replicas"] == "2"
        if spec.role != "faust-leader":
            assert spec.partitions == 12


@pytest.mark.parametrize(("rf", "isr"), [(1, 1), (2, 1), (3, 2), (5, 3)])
def test_default_min_insync_replicas_tolerates_one_broker_down(rf: int, isr: int) -> None:
    assert TopicPolicy().min_isr(rf) == isr


def test_explicit_min_insync_above_replication_is_rejected() -> None:
    with pytest.raises(ValueError, match="between 1 and the replication factor 3"):
        desired_topics(settings(), TopicPolicy(min_insync_replicas=4))


def test_plan_after_create_is_all_ok() -> None:
    s = settings()
    actions = plan(s, as_existing(s))
    assert {a.kind for a in actions} == {ActionKind.OK}
    assert not any(a.changes_cluster for a in actions)


def test_shrinking_is_refused_everywhere_with_the_reason() -> None:
    before = settings()
    actions = plan(settings(partitions=6), as_existing(before))
    refused = [a for a in actions if a.kind is ActionKind.REFUSED]
    assert {a.spec.name for a in refused} == {
        t.name for t in desired_topics(before) if t.partitions == 12
    }
    for action in refused:
        assert "murmur2(key) % N" in action.detail
        assert "Keep 12 partitions" in action.detail
        assert action.current_partitions == 12
    changelog = next(a for a in refused if a.spec.role == "changelog")
    assert "table state" in changelog.detail


def test_growing_is_allowed_for_stateless_topics_and_refused_for_state() -> None:
    s = settings(partitions=24)
    kinds = by_topic(plan(s, as_existing(settings())))
    for topic in [*s.source_topics, s.dlq_topic, s.send_topic("email")]:
        assert kinds[topic] == [ActionKind.INCREASE_PARTITIONS]
    assert kinds[s.customer_events_topic] == [ActionKind.REFUSED]
    assert kinds[changelog_topic(s)] == [ActionKind.REFUSED]
    assert kinds["prod-__assignor-__leader"] == [ActionKind.OK]


def test_config_drift_is_altered_and_only_the_drift() -> None:
    s = settings()
    existing = as_existing(s)
    name = changelog_topic(s)
    drifted = dict(existing[name].configs or {}, **{"cleanup.policy": "delete"})
    existing[name] = TopicState(name, 12, 3, drifted)
    (action,) = [a for a in plan(s, existing) if a.spec.name == name]
    assert action.kind is ActionKind.ALTER_CONFIG
    assert dict(action.config_changes) == {"cleanup.policy": "compact"}
    assert "cleanup.policy=delete -> compact" in action.detail


def test_unknown_configs_are_reported_not_altered() -> None:
    s = settings()
    existing = {n: TopicState(n, t.partitions, 3, None) for n, t in as_existing(s).items()}
    actions = plan(s, existing)
    assert {a.kind for a in actions} == {ActionKind.OK}
    assert all("configs not verified" in a.detail for a in actions)


def test_replication_factor_mismatch_is_refused_and_partitions_still_checked() -> None:
    s = settings()
    existing = {n: TopicState(n, t.partitions, 1, t.configs) for n, t in as_existing(s).items()}
    existing["omni.dlq"] = TopicState("omni.dlq", 16, 1, existing["omni.dlq"].configs)
    kinds = by_topic(plan(s, existing))
    assert kinds["omni.events.site"] == [ActionKind.REFUSED]
    assert kinds["omni.dlq"] == [ActionKind.REFUSED, ActionKind.REFUSED]  # shrink + RF


@pytest.mark.parametrize(
    ("url", "servers"),
    [
        ("kafka://k1:9092", ["k1:9092"]),
        ("kafka://k1:9092;kafka://k2:9092", ["k1:9092", "k2:9092"]),
        ("kafka://k1:9092,k2:9093", ["k1:9092", "k2:9093"]),
    ],
)
def test_bootstrap_servers_from_faust_broker_urls(url: str, servers: list[str]) -> None:
    assert bootstrap_servers(url) == servers


def test_plan_covers_every_topic_the_runtime_declares() -> None:
    """The plan and the runtime must not drift apart (a missing topic would be auto-created)."""
    from faust.assignor.leader_assignor import LeaderAssignor

    from omnistream.runtime.app import build_runtime
    from omnistream.worker_settings import read_worker_settings

    s = settings(partitions=4, replication_factor=1)
    runtime = build_runtime(read_worker_settings(s), Catalog())
    app = runtime.app
    changelogs = {table.changelog_topic.get_topic_name() for table in app.tables.values()}
    declared = {
        *(name for agent in app.agents.values() for name in agent.channel.topics),
        *s.source_topics,
        runtime.topics.customer_events.get_topic_name(),
        runtime.topics.dlq.get_topic_name(),
        *(t.get_topic_name() for t in runtime.topics.sends.values()),
        runtime.topics.journey_events.get_topic_name(),
        *changelogs,
        LeaderAssignor(app)._leader_topic_name,
    }
    specs = {t.name: t for t in desired_topics(s)}
    assert declared == set(specs)
    assert len(changelogs) == 4  # customers, aliases, broadcasts, journey-stats
    for table in app.tables.values():
        assert table.partitions == specs[table.changelog_topic.get_topic_name()].partitions
    assert isinstance(app, faust.App)
