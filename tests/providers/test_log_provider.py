"""The ``log`` provider redacts addresses and content unless told not to (issue 16).

Its default sink is stdout, which is the worker's log stream: a default that copied every
address and message body there put personal data wherever the logs go.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson
import pytest

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.ports import Outgoing
from omnistream.providers.log import LogProvider, LogProviderSettings, from_settings
from tests.unit.channels.factory import T0, make_send

ADDRESS = "ada.lovelace@example.com"
BODY = "Hello there"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OMNISTREAM_"):
            monkeypatch.delenv(name)


def outgoing() -> Outgoing:
    send = make_send()
    return Outgoing(
        send_id="send-1",
        customer_key="cust-1",
        channel="email",
        address=ADDRESS,
        message=send.messages["email"],
        category="marketing",
        journey_id="welcome",
        step_id="hello",
        caused_at=T0,
    )


async def send_once(provider: LogProvider) -> None:
    try:
        await provider.send(outgoing())
    finally:
        await provider.aclose()


async def test_default_stdout_output_has_no_address_or_body(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    await send_once(from_settings(LogProviderSettings(), Settings(), ChannelSettings()))
    out = capsysbinary.readouterr().out
    assert ADDRESS.encode() not in out and BODY.encode() not in out
    assert b"ada" not in out.lower()
    line = orjson.loads(out)
    assert line["send_id"] == "send-1" and line["customer_key"] == "cust-1"
    assert (line["channel"], line["journey_id"], line["step_id"]) == ("email", "welcome", "hello")
    assert line["body_chars"] == len(BODY) and line["subject_chars"] == len("Hi")
    assert line["to_sha256"] == hashlib.sha256(ADDRESS.encode()).hexdigest()[:12]
    assert {"to", "subject", "body", "data"}.isdisjoint(line)


async def test_default_file_output_has_no_address_or_body(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sends = tmp_path / "sends.jsonl"
    monkeypatch.setenv("OMNISTREAM_PROVIDER_LOG_PATH", str(sends))
    await send_once(from_settings(LogProviderSettings(), Settings(), ChannelSettings()))
    text = sends.read_text()
    assert ADDRESS not in text and BODY not in text


async def test_redaction_off_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sends = tmp_path / "sends.jsonl"
    monkeypatch.setenv("OMNISTREAM_PROVIDER_LOG_PATH", str(sends))
    monkeypatch.setenv("OMNISTREAM_PROVIDER_LOG_REDACT", "false")
    await send_once(from_settings(LogProviderSettings(), Settings(), ChannelSettings()))
    line = orjson.loads(sends.read_bytes())
    assert (line["to"], line["subject"], line["body"]) == (ADDRESS, "Hi", BODY)
