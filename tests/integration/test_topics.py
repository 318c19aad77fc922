"""``omnistream topics create`` against the real broker: creates, is idempotent, refuses to
shrink, and says so plainly when the broker lacks an admin API (Tansu has no AlterConfigs).

Each test uses its own topic prefix and app id, so they share the session broker safely.
"""

from __future__ import annotations

import asyncio
import itertools
import os

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from click.testing import CliRunner, Result

from omnistream.config import Settings
from omnistream.ops.cli import topics
from omnistream.ops.kafka_admin import bootstrap_servers, describe_cluster_topics
from omnistream.ops.topics import TopicState, desired_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

_runs = itertools.count()


@pytest.fixture
def env(broker_url: str) -> dict[str, str]:
    run = f"{os.getpid()}x{next(_runs)}"
    return {"OMNISTREAM_BROKER": broker_url, "OMNISTREAM_TOPIC_PREFIX": f"tp{run}.",
            "OMNISTREAM_APP_ID": f"topics-{run}", "OMNISTREAM_PARTITIONS": "4"}  # fmt: skip


def invoke(env: dict[str, str], *args: str, **overrides: str) -> Result:
    return CliRunner().invoke(topics, list(args), env={**env, **overrides})


def settings_of(env: dict[str, str]) -> Settings:
    return Settings.model_validate(
        {k.removeprefix("OMNISTREAM_").lower(): v for k, v in env.items()}
    )


def topic_count(env: dict[str, str]) -> int:
    return len(desired_topics(settings_of(env)))  # 16 today: 4 sources, 7 sends, 2 changelogs...


def cluster_state(env: dict[str, str]) -> tuple[dict[str, TopicState], list[str]]:
    settings = settings_of(env)
    names = [t.name for t in desired_topics(settings)]

    async def describe() -> tuple[dict[str, TopicState], list[str]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings.broker))
        await admin.start()
        try:
            return await describe_cluster_topics(admin, names)
        finally:
            await admin.close()

    return asyncio.run(describe())


def lines_starting(result: Result, word: str) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(word)]


def test_create_is_idempotent_and_verifiable(env: dict[str, str]) -> None:
    n = topic_count(env)
    first = invoke(env, "create")
    assert first.exit_code == 0, first.output
    assert len(lines_starting(first, "create ")) == n
    assert f"applied {n} change(s)" in first.output

    states, _notes = cluster_state(env)
    assert len(states) == n
    app_id = env["OMNISTREAM_APP_ID"]
    changelog = states[f"{app_id}-customers-changelog"]
    assert changelog.partitions == 4
    assert states[f"{app_id}-__assignor-__leader"].partitions == 1
    if changelog.configs is not None:  # the broker can describe configs (Tansu can)
        assert changelog.configs["cleanup.policy"] == "compact"
        dlq = states[f"{env['OMNISTREAM_TOPIC_PREFIX']}dlq"].configs or {}
        assert dlq["retention.ms"] == str(30 * 24 * 3600 * 1000)

    again = invoke(env, "create")
    assert again.exit_code == 0, again.output
    assert len(lines_starting(again, "ok ")) == n
    assert "nothing to do" in again.output


def test_dry_run_changes_nothing(env: dict[str, str]) -> None:
    result = invoke(env, "create", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"dry run: would apply {topic_count(env)} change(s)" in result.output
    states, _notes = cluster_state(env)
    assert states == {}


def test_shrinking_is_refused_and_nothing_changes(env: dict[str, str]) -> None:
    assert invoke(env, "create").exit_code == 0
    before, _notes = cluster_state(env)

    result = invoke(env, "create", OMNISTREAM_PARTITIONS="2")
    assert result.exit_code == 1, result.output
    refused = lines_starting(result, "refused ")
    assert len(refused) == topic_count(env) - 1  # all but the 1-partition leader topic
    assert "murmur2(key) % N" in result.output
    assert "nothing changed" in result.output
    after, _notes = cluster_state(env)
    assert after == before


def test_config_change_is_applied_or_the_missing_api_named(env: dict[str, str]) -> None:
    assert invoke(env, "create").exit_code == 0
    result = invoke(env, "create", "--retention-days", "1")
    assert len(lines_starting(result, "alter-config ")) == 5  # four sources + customer-events
    states, _notes = cluster_state(env)
    site = states[f"{env['OMNISTREAM_TOPIC_PREFIX']}events.site"]
    if "does not support the Kafka AlterConfigs API" in result.output:  # Tansu
        assert result.exit_code == 1
        assert site.configs is not None and site.configs["retention.ms"] == str(7 * 86_400_000)
    else:  # a broker with AlterConfigs (OMNISTREAM_BROKER pointing at Kafka)
        assert result.exit_code == 0, result.output
        assert site.configs is not None and site.configs["retention.ms"] == str(86_400_000)
