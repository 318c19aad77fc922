"""deploy/compose.yaml against the Compose Specification schema, plus what the schema cannot
know: one data volume per worker, topics created before workers start, settings that
omnistream actually reads, and mounts that point at files in the repository.

The schema is vendored in tests/deploy/schemas/ (copied from check-jsonschema's vendored
compose-spec.json, Apache-2.0, see LICENSE.compose-spec there) so the check runs offline.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from omnistream.config import Settings
from omnistream.ops.kafka_security import KafkaSecurity

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
WORKERS = ("omnistream-1", "omnistream-2")
LISTENER_KEYS = {
    "OMNISTREAM_WEB_HOST", "OMNISTREAM_WEB_PORT", "OMNISTREAM_PUBLIC_HOST",
    "OMNISTREAM_PUBLIC_PORT", "OMNISTREAM_INTERNAL_TOKENS",
}  # fmt: skip
"""Worker-only settings: the topics job serves no HTTP and gets no token."""


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def omnistream_env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in service["environment"].items() if k.startswith("OMNISTREAM_")}


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    broken = dict(compose, services={"x": {"restart": 5}})
    assert list(validator.iter_errors(broken)), "the schema accepts anything: check the file"


def test_kafka_is_a_three_node_kraft_quorum(compose: dict[str, Any]) -> None:
    services = compose["services"]
    brokers = {n: s for n, s in services.items() if s.get("image", "").startswith("apache/kafka:")}
    assert len(brokers) == 3
    voters = {f"{s['environment']['KAFKA_NODE_ID']}@{n}:9093" for n, s in brokers.items()}
    cluster_ids = set()
    for service in brokers.values():
        env = service["environment"]
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        cluster_ids.add(env["CLUSTER_ID"])
    (cluster_id,) = cluster_ids
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16  # Kafka's Uuid format


def test_redis_keeps_an_append_only_file_and_requires_a_user(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert ["--user", "default", "off"] == command[command.index("--user") :][:3]
    redis_url = omnistream_env(compose["services"]["omnistream-1"])["OMNISTREAM_REDIS_URL"]
    assert redis_url.startswith("redis://omnistream:")


def test_each_worker_has_its_own_data_volume(compose: dict[str, Any]) -> None:
    seen: set[str] = set()
    for name in WORKERS:
        service = compose["services"][name]
        data_dir = omnistream_env(service)["OMNISTREAM_DATA_DIR"]
        mounts = [v.split(":") for v in service["volumes"]]
        (volume,) = [src for src, dst, *_ in mounts if dst == data_dir]
        assert volume in compose["volumes"]
        assert volume not in seen, "two workers share a RocksDB directory"
        seen.add(volume)
        assert omnistream_env(service)["OMNISTREAM_STORE"] == "rocksdb://"


def test_topics_job_runs_first_with_the_workers_settings(compose: dict[str, Any]) -> None:
    services = compose["services"]
    job = services["topics"]
    assert job["command"] == ["topics", "create"]
    assert job["restart"] == "no"
    for name in WORKERS:
        worker = services[name]
        assert worker["command"] == ["worker"]
        assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        worker_env = omnistream_env(worker)
        assert set(worker_env) - set(omnistream_env(job)) == LISTENER_KEYS
        shared = {k: v for k, v in worker_env.items() if k not in LISTENER_KEYS}
        assert shared == omnistream_env(job)
        assert int(re.sub(r"\D", "", worker["stop_grace_period"])) >= 30


def test_worker_environment_is_understood_by_omnistream(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = omnistream_env(compose["services"]["omnistream-1"])
    settings_keys = {f"OMNISTREAM_{name.upper()}" for name in Settings.model_fields}
    security_keys = {f"OMNISTREAM_KAFKA_{name.upper()}" for name in KafkaSecurity.model_fields}
    assert set(env) - settings_keys - security_keys == set(), "unknown OMNISTREAM_* variable"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.replication_factor == 3
    assert KafkaSecurity().security_protocol == "PLAINTEXT"
    brokers = [s.split("://")[1] for s in settings.broker.split(";")]
    assert brokers == [f"kafka-{i}:9092" for i in (1, 2, 3)]


def published(service: dict[str, Any]) -> dict[int, str]:
    """Container port -> host address it is published on ("" = every address)."""
    out: dict[int, str] = {}
    for spec in service.get("ports", []):
        *host, _host_port, container = str(spec).split(":")
        out[int(container)] = host[0] if host else ""
    return out


def test_only_the_public_listener_is_published_beyond_loopback(compose: dict[str, Any]) -> None:
    token_ref = "${OMNISTREAM_INTERNAL_TOKEN:?set OMNISTREAM_INTERNAL_TOKEN}"
    for name in WORKERS:
        service = compose["services"][name]
        env = omnistream_env(service)
        internal, public = int(env["OMNISTREAM_WEB_PORT"]), int(env["OMNISTREAM_PUBLIC_PORT"])
        assert internal != public
        ports = published(service)
        assert ports[public] == "", f"{name}: providers must reach the public listener"
        assert ports.get(internal, "127.0.0.1") == "127.0.0.1", f"{name}: internal port exposed"
        assert env["OMNISTREAM_PUBLIC_HOST"] == "0.0.0.0"  # inside the container
        assert env["OMNISTREAM_INTERNAL_TOKENS"] == token_ref  # from the environment, no default
        assert "metrics_open" not in {k.lower().removeprefix("omnistream_") for k in env}
    for name, service in compose["services"].items():
        if name not in WORKERS:
            assert not any(str(p).endswith((":6066", ":6067")) for p in service.get("ports", []))


def test_prometheus_scrapes_both_workers_and_loads_the_alerts(compose: dict[str, Any]) -> None:
    config = yaml.safe_load(compose["configs"]["prometheus-config"]["content"])
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "omnistream"  # the alerts and the dashboard filter on it
    targets = [t for static in job["static_configs"] for t in static["targets"]]
    assert sorted(targets) == [f"{w}:6066" for w in WORKERS]  # the internal listener
    # ... with the workers' token, from a compose secret fed by the same variable
    credentials = job["authorization"]["credentials_file"]
    assert job["authorization"].get("type", "Bearer") == "Bearer"
    (secret,) = compose["services"]["prometheus"]["secrets"]
    assert credentials == f"/run/secrets/{secret}"
    assert compose["secrets"][secret] == {"environment": "OMNISTREAM_INTERNAL_TOKEN"}
    mounts = dict(v.split(":")[:2] for v in compose["services"]["prometheus"]["volumes"])
    rules_file = config["rule_files"][0]
    assert mounts["./prometheus/alerts.yml"] == rules_file


def test_every_bind_mount_and_build_context_exists(compose: dict[str, Any]) -> None:
    checked = 0
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
                checked += 1
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    assert checked >= 5  # journeys x2, alerts, grafana provisioning x2 and dashboards
