"""The SMTP provider against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

from email import message_from_bytes
from typing import Any

import pytest
from pydantic import SecretStr

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.ports import Outgoing, ProviderError
from omnistream.providers.errors import ProviderConfigError
from omnistream.providers.registry import build_provider, read_provider_settings
from omnistream.providers.smtp import SmtpProvider, SmtpSettings
from tests.providers.conftest import Mailbox, SmtpFactory, TlsFiles
from tests.unit.channels.factory import (
    T0,
    FakeTime,
    ScriptedProvider,
    make_send,
    memory_dispatcher,
    types,
)


def provider(port: int) -> SmtpProvider:
    return SmtpProvider(
        SmtpSettings(host="127.0.0.1", port=port, sender="shop@example.com", start_tls=False),
        timeout_s=5,
    )


def outgoing(address: str) -> Outgoing:
    send = make_send()
    return Outgoing(
        send_id="send-1",
        customer_key="cust-1",
        channel="email",
        address=address,
        message=send.messages["email"],
        category="marketing",
        journey_id="welcome",
        step_id="hello",
    )


async def test_delivers_with_the_send_id_as_message_id(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    result = await provider(port).send(outgoing("ada@example.com"))
    [(envelope, content)] = mailbox.messages
    assert envelope.mail_from == "shop@example.com"
    assert envelope.rcpt_tos == ["ada@example.com"]
    message = message_from_bytes(content)
    assert message["Message-ID"] == "<send-1@omnistream>" == result.provider_message_id
    assert message["Subject"] == "Hi"
    assert "Hello there" in message.get_payload()


@pytest.mark.parametrize(
    ("address", "reason", "transient"),
    [
        ("reject@example.com", "address_invalid", False),
        ("busy@example.com", "recipient_deferred", True),
    ],
)
async def test_refused_recipients_by_reply_code(
    smtp_server: tuple[Mailbox, int], address: str, reason: str, transient: bool
) -> None:
    _, port = smtp_server
    with pytest.raises(ProviderError) as caught:
        await provider(port).send(outgoing(address))
    assert (caught.value.reason, caught.value.transient) == (reason, transient)


async def test_server_gone_is_transient_and_falls_back() -> None:
    dispatcher = memory_dispatcher(FakeTime(), {"email": provider(9), "sms": ScriptedProvider()})
    result = await dispatcher.handle(make_send(category="transactional"), T0)
    assert types(result) == ["message_failed", "message_fallback"]
    assert result.outcomes[0].properties["error"] == "connection"


async def test_dispatcher_sends_email_end_to_end(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    dispatcher = memory_dispatcher(FakeTime(), {"email": provider(port)})
    result = await dispatcher.handle(make_send(chain=("email",)), T0)
    await dispatcher.handle(make_send(chain=("email",)), T0)  # redelivered
    assert types(result) == ["message_sent"]
    assert len(mailbox.messages) == 1


# --- TLS before credentials (issue 16) ------------------------------------------------------


def with_login(port: int, **settings: Any) -> SmtpProvider:
    own = SmtpSettings(
        host="127.0.0.1",
        port=port,
        sender="shop@example.com",
        username="relay-user",
        password=SecretStr("relay-pass"),
        **settings,
    )
    return SmtpProvider(own, timeout_s=5)


async def test_credentials_are_never_sent_without_tls(smtp_factory: SmtpFactory) -> None:
    """The server offers no STARTTLS (a stripping MITM looks the same) and would take AUTH in
    clear: the send fails and the password never leaves."""
    mailbox, port = smtp_factory(auth_require_tls=False)
    with pytest.raises(ProviderError) as caught:
        await with_login(port).send(outgoing("ada@example.com"))
    assert (caught.value.reason, caught.value.transient) == ("smtp_tls_unavailable", True)
    assert mailbox.logins == [] and mailbox.messages == []


async def test_plaintext_auth_only_when_explicitly_allowed(smtp_factory: SmtpFactory) -> None:
    mailbox, port = smtp_factory(auth_require_tls=False)
    await with_login(port, allow_plaintext_auth=True).send(outgoing("ada@example.com"))
    assert mailbox.logins == [("relay-user", "relay-pass", False)]
    assert len(mailbox.messages) == 1


async def test_credentials_go_over_starttls(smtp_factory: SmtpFactory, tls_files: TlsFiles) -> None:
    mailbox, port = smtp_factory(tls_context=tls_files.server_context(), require_starttls=True)
    await with_login(port, ca_file=tls_files.cert).send(outgoing("ada@example.com"))
    assert mailbox.logins == [("relay-user", "relay-pass", True)]
    assert len(mailbox.messages) == 1


async def test_an_untrusted_certificate_is_not_sent_credentials(
    smtp_factory: SmtpFactory, tls_files: TlsFiles
) -> None:
    mailbox, port = smtp_factory(tls_context=tls_files.server_context(), require_starttls=True)
    with pytest.raises(ProviderError) as caught:
        await with_login(port).send(outgoing("ada@example.com"))  # system CAs only
    assert caught.value.transient
    assert mailbox.logins == [] and mailbox.messages == []


def test_credentials_with_starttls_off_refuse_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISTREAM_SMTP_USERNAME", "relay-user")
    monkeypatch.setenv("OMNISTREAM_SMTP_PASSWORD", "relay-pass")
    monkeypatch.setenv("OMNISTREAM_SMTP_START_TLS", "false")
    with pytest.raises(ProviderConfigError) as caught:
        build_provider("smtp", read_provider_settings("smtp"), Settings(), ChannelSettings())
    message = str(caught.value)
    assert "OMNISTREAM_SMTP_START_TLS" in message
    assert "OMNISTREAM_SMTP_ALLOW_PLAINTEXT_AUTH" in message and "\n" not in message


async def test_without_credentials_starttls_stays_opportunistic(
    smtp_factory: SmtpFactory,
) -> None:
    mailbox, port = smtp_factory()
    own = SmtpSettings(host="127.0.0.1", port=port, sender="shop@example.com")
    await SmtpProvider(own, timeout_s=5).send(outgoing("ada@example.com"))
    assert len(mailbox.messages) == 1
