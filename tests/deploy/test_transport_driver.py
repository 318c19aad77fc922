"""The worker's Faust app runs our transport driver with the configured fetch wait.

Here rather than in tests/unit: building a Faust app makes event loops, which this folder's
conftest closes after each test.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest


def test_the_worker_consumer_uses_our_driver_and_fetch_wait() -> None:
    import aiokafka

    from omnistream.config import Settings
    from omnistream.ops.kafka_security import KafkaSecurity
    from omnistream.runtime.app import _faust_app
    from omnistream.runtime.transport import Consumer

    app = _faust_app(Settings(app_id="fetch-test", fetch_max_wait_ms=7), KafkaSecurity())
    assert isinstance(app.consumer, Consumer)

    async def build() -> tuple[type, int]:  # aiokafka wants a running loop; nothing connects
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return type(consumer), consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    kind, wait_ms = asyncio.run(build())
    assert issubclass(kind, aiokafka.AIOKafkaConsumer)
    assert wait_ms == 7


def test_the_recovery_consistency_check_follows_the_setting() -> None:
    """On by default (it guards RocksDB state against a recreated topic); off on Tansu."""
    from omnistream.config import Settings
    from omnistream.ops.kafka_security import KafkaSecurity
    from omnistream.runtime.app import _faust_app

    assert (
        _faust_app(Settings(app_id="check-on"), KafkaSecurity()).conf.recovery_consistency_check
        is True
    )
    off = Settings(app_id="check-off", recovery_consistency_check=False)
    assert _faust_app(off, KafkaSecurity()).conf.recovery_consistency_check is False


def test_topics_are_created_by_the_worker_only_when_declaring_is_on() -> None:
    """``OMNISTREAM_DECLARE_TOPICS=false``: a principal without CreateTopics (topics made by
    ``omnistream topics create``), or a broker without it (librdkafka's mock cluster)."""
    from omnistream.config import Settings
    from omnistream.journey.model import Catalog
    from omnistream.runtime.app import build_runtime
    from omnistream.worker_settings import read_worker_settings

    def created(declare: bool) -> list[str]:
        settings = Settings(app_id=f"declare-{declare}", declare_topics=declare)
        runtime = build_runtime(read_worker_settings(settings), Catalog())
        made: list[str] = []

        class _Producer:
            async def create_topic(self, topic: str, **_: object) -> None:
                made.append(topic)

        async def producer() -> _Producer:
            return _Producer()

        dlq = runtime.topics.dlq
        dlq._get_producer = producer  # the topic's only way to the broker
        asyncio.run(dlq.declare())
        assert runtime.app.conf.topic_allow_declare is declare
        return made

    assert created(True) == ["omni.dlq"]
    assert created(False) == []


def test_the_redis_client_exists_before_any_agent_can_run() -> None:
    """A Faust ``@app.task`` starts after the first recovery, when agents already consume: the
    client made there was missing for the first send commands, and the channel agent crashed."""
    from omnistream.config import Settings
    from omnistream.journey.model import Catalog
    from omnistream.runtime.app import build_runtime
    from omnistream.worker_settings import read_worker_settings

    runtime = build_runtime(read_worker_settings(Settings(app_id="redis-early")), Catalog())
    assert runtime.redis is not None


def test_the_worker_runs_with_the_young_generation_threshold_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's default (700) unless told: a higher one saves CPU and costs memory."""
    import faust
    from click.testing import CliRunner

    from omnistream.cli import cli

    seen: list[tuple[int, int, int]] = []

    class _Worker:  # stands in for Faust's: records the collector's settings it starts with
        def __init__(self, *_: object, **__: object) -> None:
            pass

        def execute_from_commandline(self) -> None:
            seen.append(gc.get_threshold())

    monkeypatch.setattr(faust, "Worker", _Worker)
    (tmp_path / "journeys").mkdir()
    env = {
        "OMNISTREAM_JOURNEYS_DIR": str(tmp_path / "journeys"),
        "OMNISTREAM_DATA_DIR": str(tmp_path / "data"),
        "OMNISTREAM_EVENT_LOOP": "asyncio",
        "OMNISTREAM_APP_ID": "gc-test",
    }
    before = gc.get_threshold()
    try:
        for value, expected in (("12345", 12345), (None, 700)):
            gc.set_threshold(1, *before[1:])  # neither value: the worker must set it
            run_env = {**env, "OMNISTREAM_GC_GEN0_THRESHOLD": value}
            result = CliRunner().invoke(cli, ["worker"], env=run_env)
            assert result.exit_code == 0, result.output
            assert seen.pop() == (expected, *before[1:])
    finally:
        gc.set_threshold(*before)
