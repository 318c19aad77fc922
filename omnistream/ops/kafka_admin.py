"""The cluster side of ``omnistream topics``: read topic state, apply a plan (aiokafka admin).

Two traps shape this module:

- Describing a topic is a Metadata request, and brokers that auto-create topics (Tansu always,
  Kafka with ``auto.create.topics.enable``) create a missing topic when asked about it. So we
  list first and describe only topics that exist.
- Kafka's ``AlterConfigs`` (the one aiokafka speaks) replaces *all* topic-level overrides, so an
  alteration re-sends the overrides already on the topic along with the changed values.

Brokers that lack an admin API (Tansu implements neither ``AlterConfigs`` nor
``CreatePartitions``) raise ``BrokerLacksApi`` with a sentence an operator can act on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import IncompatibleBrokerVersion, for_code

from omnistream.ops.topics import Action, ActionKind, TopicState

__all__ = [
    "BrokerLacksApi",
    "TopicAdminError",
    "apply_actions",
    "bootstrap_servers",
    "describe_cluster_topics",
]

TOPIC_CONFIG_SOURCE = 1
"""DescribeConfigs v1+ ``config_source`` for a value set on the topic itself."""
TOPIC_ALREADY_EXISTS = 36


class TopicAdminError(RuntimeError):
    """The broker rejected an admin request; ``applied`` lists what was done before it."""

    applied: tuple[Action, ...] = ()


class BrokerLacksApi(TopicAdminError):
    """The broker does not implement an admin API the plan needs."""

    def __init__(self, api: str, what: str) -> None:
        super().__init__(
            f"the broker does not support the Kafka {api} API, so {what} cannot be done here; "
            "do it with the cluster's own tooling (kafka-topics.sh / kafka-configs.sh) or on a "
            "broker that implements it"
        )
        self.api = api


def bootstrap_servers(broker_url: str) -> list[str]:
    """``kafka://h1:9092;kafka://h2:9092`` or ``kafka://h1:9092,h2:9092`` -> ``[h1:9092, ...]``."""
    servers: list[str] = []
    for part in broker_url.replace(";", ",").split(","):
        host = part.strip().split("://", 1)[-1].rstrip("/")
        if host:
            servers.append(host)
    if not servers:
        raise ValueError(f"no bootstrap server in broker URL {broker_url!r}")
    return servers


def _parse_configs(response: Any) -> dict[str, tuple[dict[str, str], frozenset[str]]]:
    version = int(getattr(response, "API_VERSION", 1))
    out: dict[str, tuple[dict[str, str], frozenset[str]]] = {}
    for error_code, error_message, _type, name, entries in response.resources:
        if error_code:
            raise TopicAdminError(f"describe configs of {name}: {error_message or error_code}")
        values: dict[str, str] = {}
        overrides: set[str] = set()
        for entry in entries:
            key, value, _read_only, source_or_default = entry[0], entry[1], entry[2], entry[3]
            if value is not None:
                values[key] = str(value)
            is_override = (
                not source_or_default if version == 0 else source_or_default == TOPIC_CONFIG_SOURCE
            )
            if is_override:
                overrides.add(key)
        out[name] = (values, frozenset(overrides))
    return out


async def describe_cluster_topics(
    admin: AIOKafkaAdminClient, names: Iterable[str]
) -> tuple[dict[str, TopicState], list[str]]:
    """The state of those of ``names`` that exist, plus notes about what could not be read."""
    wanted = set(names)
    existing = sorted(wanted & set(await admin.list_topics()))
    if not existing:
        return {}, []
    described = await admin.describe_topics(existing)
    notes: list[str] = []
    configs: dict[str, tuple[dict[str, str], frozenset[str]]] = {}
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in existing]
        )
    except IncompatibleBrokerVersion:
        notes.append("the broker does not support DescribeConfigs: topic configs are not verified")
    else:
        for response in responses:
            configs.update(_parse_configs(response))
    states: dict[str, TopicState] = {}
    for topic in described:
        name = topic["topic"]
        if topic["error_code"]:
            raise TopicAdminError(f"describe {name}: {for_code(topic['error_code']).__name__}")
        partitions = topic["partitions"]
        rf = max((len(p["replicas"]) for p in partitions), default=0)
        values, overrides = configs.get(name, ({}, frozenset()))
        states[name] = TopicState(
            name,
            len(partitions),
            rf,
            values if name in configs else None,
            overrides,
        )
    return states, notes


def _raise_topic_errors(topic_errors: Sequence[Any], what: str) -> None:
    for row in topic_errors:
        name, code = row[0], row[1]
        message = row[2] if len(row) > 2 else None
        if code and code != TOPIC_ALREADY_EXISTS:  # a concurrent creator won: that is fine
            raise TopicAdminError(f"{what} {name}: {for_code(code).__name__} {message or ''}")


async def _create(admin: AIOKafkaAdminClient, actions: Sequence[Action]) -> None:
    topics = [
        NewTopic(
            a.spec.name,
            a.spec.partitions,
            a.spec.replication_factor,
            topic_configs=dict(a.spec.configs),
        )
        for a in actions
    ]
    response = await admin.create_topics(topics)
    _raise_topic_errors(response.topic_errors, "create")


async def _alter(admin: AIOKafkaAdminClient, action: Action, state: TopicState | None) -> None:
    kept: dict[str, str] = {}
    if state is not None and state.configs is not None:
        kept = {k: state.configs[k] for k in state.overrides if k in state.configs}
    configs = {**kept, **action.config_changes}
    try:
        responses = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, action.spec.name, configs=configs)]
        )
    except IncompatibleBrokerVersion:
        what = f"changing the configs of {action.spec.name}"
        raise BrokerLacksApi("AlterConfigs", what) from None
    for response in responses:
        for error_code, error_message, _type, name in response.resources:
            if error_code:
                raise TopicAdminError(f"alter configs of {name}: {error_message or error_code}")


async def _grow(admin: AIOKafkaAdminClient, action: Action) -> None:
    try:
        await admin.create_partitions({action.spec.name: NewPartitions(action.spec.partitions)})
    except IncompatibleBrokerVersion:
        raise BrokerLacksApi(
            "CreatePartitions", f"adding partitions to {action.spec.name}"
        ) from None


async def apply_actions(
    admin: AIOKafkaAdminClient,
    actions: Sequence[Action],
    states: Mapping[str, TopicState],
) -> list[Action]:
    """Carry out the cluster-changing actions (creates first, in one request); return them.

    The caller has already refused to run a plan with refusals in it.
    """
    if any(a.kind is ActionKind.REFUSED for a in actions):
        raise ValueError("a plan with refused actions must not be applied")
    applied: list[Action] = []
    try:
        creates = [a for a in actions if a.kind is ActionKind.CREATE]
        if creates:
            await _create(admin, creates)
            applied += creates
        for action in actions:
            if action.kind is ActionKind.ALTER_CONFIG:
                await _alter(admin, action, states.get(action.spec.name))
                applied.append(action)
            elif action.kind is ActionKind.INCREASE_PARTITIONS:
                await _grow(admin, action)
                applied.append(action)
    except TopicAdminError as exc:
        exc.applied = tuple(applied)
        raise
    return applied
