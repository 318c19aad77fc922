"""Providers whose callbacks are verified with a secret refuse to exist without one (issue 16).

An empty HMAC key is a key everyone knows: anyone could sign a ``message_unsubscribed`` or a hard
bounce (which deletes the customer's address). So an empty or blank secret stops the worker at
start with one line naming the variable, and verification refuses an empty key even if a
provider was somehow built with one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import orjson
import pytest
from pydantic import SecretStr

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.ports import ReceiptRejected
from omnistream.providers.base import sign_timestamped, verify_timestamped
from omnistream.providers.errors import ProviderConfigError
from omnistream.providers.registry import build_provider, read_provider_settings
from omnistream.providers.twilio import TwilioProvider, TwilioSettings, twilio_signature
from omnistream.providers.webhook import WebhookProvider
from tests.unit.channels.factory import T0

REPO = Path(__file__).resolve().parents[2]
CALLBACK = "https://hooks.example/webhooks/twilio?c=cust-1&s=send-1"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OMNISTREAM_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("provider", "variable"),
    [("webhook", "OMNISTREAM_WEBHOOK_SECRET"), ("twilio", "OMNISTREAM_TWILIO_AUTH_TOKEN")],
)
@pytest.mark.parametrize("value", [None, "", "   "])
def test_empty_callback_secret_refuses_to_build(
    monkeypatch: pytest.MonkeyPatch, provider: str, variable: str, value: str | None
) -> None:
    if value is not None:
        monkeypatch.setenv(variable, value)
    with pytest.raises(ProviderConfigError) as caught:
        build_provider(provider, read_provider_settings(provider), Settings(), ChannelSettings())
    message = str(caught.value)
    assert variable in message and "\n" not in message


def test_a_real_secret_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISTREAM_WEBHOOK_SECRET", "whsec-long-random")
    assert (
        build_provider(
            "webhook", read_provider_settings("webhook"), Settings(), ChannelSettings()
        ).name
        == "webhook"
    )


def test_bad_provider_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMNISTREAM_SMTP_PORT", "twenty-five")
    with pytest.raises(ProviderConfigError) as caught:
        build_provider("smtp", read_provider_settings("smtp"), Settings(), ChannelSettings())
    assert "OMNISTREAM_SMTP_PORT" in str(caught.value) and "\n" not in str(caught.value)


def test_direct_construction_with_empty_secret_is_refused() -> None:
    with pytest.raises(ProviderConfigError):
        WebhookProvider("http://unused", SecretStr(" "))
    with pytest.raises(ProviderConfigError):
        TwilioProvider(TwilioSettings(account_sid="AC1"))


def test_verification_refuses_an_empty_key_even_when_correctly_signed() -> None:
    body = orjson.dumps({"events": []})
    header = sign_timestamped("", body, int(T0.timestamp()))
    with pytest.raises(ReceiptRejected) as caught:
        verify_timestamped(header, "", body, T0)
    assert caught.value.status == 401


def test_twilio_receipt_with_empty_token_is_refused() -> None:
    provider = TwilioProvider(TwilioSettings(account_sid="AC1", auth_token=SecretStr("tok")))
    provider._own.auth_token = SecretStr("")  # slipped through: defence in depth
    params = {"MessageSid": "SM1", "MessageStatus": "undelivered"}
    headers = {"X-Twilio-Signature": twilio_signature("", CALLBACK, params)}
    with pytest.raises(ReceiptRejected) as caught:
        provider.parse_receipt(headers, urlencode(params).encode(), CALLBACK, T0)
    assert caught.value.status == 401


def test_worker_with_empty_webhook_secret_exits_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNISTREAM_")}
    env.update(
        OMNISTREAM_PROVIDER_SMS="webhook",
        OMNISTREAM_WEBHOOK_SECRET="",
        OMNISTREAM_JOURNEYS_DIR=str(REPO / "journeys"),
        OMNISTREAM_DATA_DIR=str(tmp_path / "data"),
        OMNISTREAM_BROKER="kafka://127.0.0.1:9",  # never reached: the worker stops before
        OMNISTREAM_REDIS_URL="redis://127.0.0.1:9/0",
    )
    done = subprocess.run(
        [sys.executable, "-m", "omnistream", "worker"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "OMNISTREAM_WEBHOOK_SECRET" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
