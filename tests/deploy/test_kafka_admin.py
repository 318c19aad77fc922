"""The cluster side of ``topics create`` against a recording fake admin client: what it sends,
what it tolerates, and how a missing broker API is reported."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import IncompatibleBrokerVersion

from omnistream.config import Settings
from omnistream.ops.kafka_admin import (
    BrokerLacksApi,
    TopicAdminError,
    apply_actions,
    describe_cluster_topics,
)
from omnistream.ops.topics import ActionKind, TopicState, desired_topics, plan

SETTINGS = Settings(app_id="prod", partitions=4, replication_factor=3)


@dataclass
class FakeAdmin:
    topics: dict[str, int] = field(default_factory=dict)
    configs: dict[str, list[tuple[str, str, bool, int, bool]]] = field(default_factory=dict)
    create_errors: dict[str, int] = field(default_factory=dict)
    alter_supported: bool = True
    describe_configs_supported: bool = True
    calls: list[tuple[str, Any]] = field(default_factory=list)

    async def list_topics(self) -> list[str]:
        return [*self.topics, "unrelated"]

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        self.calls.append(("describe_topics", names))
        return [
            {"topic": n, "error_code": 0,
             "partitions": [{"replicas": [1, 2, 3]} for _ in range(self.topics[n])]}
            for n in names
        ]  # fmt: skip

    async def describe_configs(self, resources: list[Any]) -> list[Any]:
        if not self.describe_configs_supported:
            raise IncompatibleBrokerVersion("DescribeConfigsRequest")
        rows = [(0, None, 2, r.name, self.configs.get(r.name, [])) for r in resources]
        return [SimpleNamespace(API_VERSION=2, resources=rows)]

    async def create_topics(self, new_topics: list[Any]) -> Any:
        self.calls.append(("create_topics", [t.name for t in new_topics]))
        errors = [(t.name, self.create_errors.get(t.name, 0), None) for t in new_topics]
        return SimpleNamespace(topic_errors=errors)

    async def alter_configs(self, resources: list[Any]) -> list[Any]:
        if not self.alter_supported:
            raise IncompatibleBrokerVersion("AlterConfigsRequest")
        self.calls.append(("alter_configs", {r.name: dict(r.configs) for r in resources}))
        return [SimpleNamespace(resources=[(0, None, 2, r.name) for r in resources])]


def test_only_existing_topics_are_described() -> None:
    """Describing a missing topic auto-creates it on Tansu and on auto-creating Kafka."""
    admin = FakeAdmin(topics={"omni.dlq": 4})
    names = [t.name for t in desired_topics(SETTINGS)]
    states, notes = asyncio.run(describe_cluster_topics(admin, names))
    assert admin.calls == [("describe_topics", ["omni.dlq"])]
    assert states["omni.dlq"] == TopicState("omni.dlq", 4, 3, {}, frozenset())
    assert notes == []


def test_overrides_and_effective_values_are_told_apart() -> None:
    admin = FakeAdmin(
        topics={"omni.dlq": 4},
        configs={"omni.dlq": [("retention.ms", "1", False, 1, False),
                              ("segment.bytes", "1024", False, 5, False)]},
    )  # fmt: skip
    states, _ = asyncio.run(describe_cluster_topics(admin, ["omni.dlq"]))
    state = states["omni.dlq"]
    assert state.configs == {"retention.ms": "1", "segment.bytes": "1024"}
    assert state.overrides == frozenset({"retention.ms"})


def test_missing_describe_configs_is_a_note_not_a_failure() -> None:
    admin = FakeAdmin(topics={"omni.dlq": 4}, describe_configs_supported=False)
    states, notes = asyncio.run(describe_cluster_topics(admin, ["omni.dlq"]))
    assert states["omni.dlq"].configs is None
    assert notes and "DescribeConfigs" in notes[0]


def test_alter_keeps_the_other_overrides_and_changes_only_the_drift() -> None:
    name = "omni.dlq"
    spec = next(t for t in desired_topics(SETTINGS) if t.name == name)
    configs = {**spec.configs, "retention.ms": "5", "max.message.bytes": "2000000"}
    state = TopicState(name, 4, 3, configs, frozenset({"retention.ms", "max.message.bytes"}))
    actions = [a for a in plan(SETTINGS, {name: state}) if a.spec.name == name]
    assert [a.kind for a in actions] == [ActionKind.ALTER_CONFIG]
    admin = FakeAdmin()
    applied = asyncio.run(apply_actions(admin, actions, {name: state}))
    assert applied == actions
    expected = {"max.message.bytes": "2000000", "retention.ms": spec.configs["retention.ms"]}
    assert admin.calls == [("alter_configs", {name: expected})]


def test_create_tolerates_a_concurrent_creator_but_not_other_errors() -> None:
    actions = plan(SETTINGS, {})
    first = actions[0].spec.name
    admin = FakeAdmin(create_errors={first: 36})  # TopicAlreadyExists
    assert asyncio.run(apply_actions(admin, actions, {})) == actions
    admin = FakeAdmin(create_errors={first: 38})  # InvalidReplicationFactor
    with pytest.raises(TopicAdminError, match=first):
        asyncio.run(apply_actions(admin, actions, {}))


def test_missing_alter_api_names_the_api_and_reports_what_was_done() -> None:
    name = "omni.dlq"
    state = TopicState(name, 4, 3, {"cleanup.policy": "delete"})
    actions = plan(SETTINGS, {name: state})
    admin = FakeAdmin(alter_supported=False)
    with pytest.raises(BrokerLacksApi, match="AlterConfigs API") as caught:
        asyncio.run(apply_actions(admin, actions, {name: state}))
    assert all(a.kind is ActionKind.CREATE for a in caught.value.applied)
    assert len(caught.value.applied) == len(desired_topics(SETTINGS)) - 1


def test_a_refused_plan_is_never_applied() -> None:
    name = "omni.dlq"
    actions = plan(SETTINGS, {name: TopicState(name, 8, 3, None)})
    with pytest.raises(ValueError, match="refused"):
        asyncio.run(apply_actions(FakeAdmin(), actions, {}))
