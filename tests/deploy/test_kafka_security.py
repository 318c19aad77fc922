"""Kafka security settings reach aiokafka through Faust exactly as configured.

The checks go through Faust's own aiokafka driver (the consumer it would create, the producer
settings it would use), because the trap being guarded against lives there: SASL credentials
without an SSL context silently become SASL_PLAINTEXT.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any
from unittest import mock

import faust
import faust.transport.drivers.aiokafka as faust_aiokafka
import pytest
from pydantic import ValidationError

from omnistream.config import Settings
from omnistream.ops.kafka_security import KafkaSecurity
from omnistream.runtime.app import _faust_app


def consumer_kwargs(app: Any) -> dict[str, Any]:
    """What Faust's worker consumer would pass to ``aiokafka.AIOKafkaConsumer``."""
    captured: dict[str, Any] = {}

    def fake_consumer(**kwargs: Any) -> object:
        captured.update(kwargs)
        return object()

    with mock.patch.object(faust_aiokafka.aiokafka, "AIOKafkaConsumer", fake_consumer):
        app.consumer._thread._create_worker_consumer(app.transport)
    return captured


def producer_kwargs(app: Any) -> dict[str, Any]:
    """What Faust's producer would pass to ``aiokafka.AIOKafkaProducer``."""
    producer = app.producer
    return {**producer._settings_default(), **producer._settings_auth()}


def faust_app(security: KafkaSecurity) -> Any:
    return _faust_app(Settings(app_id="sec-test", broker="kafka://kafka:9093"), security)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key, usable as CA and as client certificate."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=omnistream-test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_default_is_plaintext_and_adds_nothing_to_faust() -> None:
    security = KafkaSecurity()
    assert security.faust_kwargs() == {}
    assert consumer_kwargs(faust_app(security))["security_protocol"] == "PLAINTEXT"


def test_sasl_ssl_from_environment_reaches_consumer_and_producer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMNISTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("OMNISTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("OMNISTREAM_KAFKA_USERNAME", "omnistream")
    monkeypatch.setenv("OMNISTREAM_KAFKA_PASSWORD", "s3cret")
    app = faust_app(KafkaSecurity())
    for kwargs in (consumer_kwargs(app), producer_kwargs(app)):
        assert kwargs["security_protocol"] == "SASL_SSL"
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
        assert kwargs["sasl_plain_username"] == "omnistream"
        assert kwargs["sasl_plain_password"] == "s3cret"
        context = kwargs["ssl_context"]
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert context.check_hostname is True


def test_faust_alone_downgrades_sasl_which_is_why_we_build_the_context() -> None:
    credentials = faust.SASLCredentials(username="u", password="p", mechanism="SCRAM-SHA-256")
    assert credentials.protocol.value == "SASL_PLAINTEXT"  # the trap, as of faust 0.15
    ours = KafkaSecurity(
        security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", username="u", password="p"
    )
    assert ours.faust_kwargs()["broker_credentials"].protocol.value == "SASL_SSL"


def test_mtls_loads_ca_and_client_certificate(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    security = KafkaSecurity(security_protocol="SSL", cafile=cert, certfile=cert, keyfile=key)
    kwargs = consumer_kwargs(faust_app(security))
    assert kwargs["security_protocol"] == "SSL"
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    subjects = [c["subject"] for c in context.get_ca_certs()]
    assert subjects == [((("commonName", "omnistream-test"),),)]
    assert "sasl_mechanism" not in kwargs
    assert security.aiokafka_kwargs()["security_protocol"] == "SSL"


def test_missing_tls_file_is_named_in_the_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    security = KafkaSecurity(security_protocol="SSL", cafile=missing)
    with pytest.raises(ValueError, match=f"cafile={missing}"):
        security.faust_kwargs()


def test_sasl_plaintext_with_password_is_refused_unless_allowed() -> None:
    with pytest.raises(ValidationError, match="unencrypted: use SASL_SSL"):
        KafkaSecurity(security_protocol="SASL_PLAINTEXT", username="u", password="p")
    allowed = KafkaSecurity(
        security_protocol="SASL_PLAINTEXT", username="u", password="p", allow_plaintext_sasl=True
    )
    kwargs = consumer_kwargs(faust_app(allowed))
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert kwargs["ssl_context"] is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"username": "u", "password": "p"}, "would ignore it: use SASL_SSL"),
        ({"security_protocol": "SASL_SSL", "username": "u"}, "needs a username and a password"),
        ({"security_protocol": "SSL", "certfile": "c.pem"}, "needs both"),
        ({"cafile": "ca.pem"}, "would ignore them: use SSL or SASL_SSL"),
    ],
)
def test_incoherent_settings_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaSecurity.model_validate(values)


def test_password_never_shows_in_repr() -> None:
    security = KafkaSecurity(security_protocol="SASL_SSL", username="u", password="hunter2")
    assert "hunter2" not in repr(security)
