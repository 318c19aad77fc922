"""``omnistream topics`` exit codes for the cases that need no broker: bad settings, no broker."""

from __future__ import annotations

from click.testing import CliRunner

from omnistream import devstack
from omnistream.ops.cli import topics


def test_unreachable_broker_exits_2_and_says_where() -> None:
    broker = f"kafka://127.0.0.1:{devstack.free_port()}"  # nothing listens there
    result = CliRunner().invoke(topics, ["plan"], env={"OMNISTREAM_BROKER": broker})
    assert result.exit_code == 2
    assert f"cannot reach {broker}" in result.output


def test_insecure_kafka_settings_exit_2_before_connecting() -> None:
    env = {
        "OMNISTREAM_BROKER": f"kafka://127.0.0.1:{devstack.free_port()}",
        "OMNISTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "OMNISTREAM_KAFKA_USERNAME": "omnistream",
        "OMNISTREAM_KAFKA_PASSWORD": "s3cret",
    }
    result = CliRunner().invoke(topics, ["create"], env=env)
    assert result.exit_code == 2
    assert "SASL_PLAINTEXT sends the password" in result.output
    assert "cannot reach" not in result.output


def test_min_insync_above_replication_exits_2() -> None:
    env = {"OMNISTREAM_REPLICATION_FACTOR": "3"}
    result = CliRunner().invoke(topics, ["plan", "--min-insync-replicas", "4"], env=env)
    assert result.exit_code == 2
    assert "between 1 and the replication factor 3" in result.output
