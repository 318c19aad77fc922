"""The SMTP provider against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

from email import message_from_bytes

import pytest

from omnistream.ports import Outgoing, ProviderError
from omnistream.providers.smtp import SmtpProvider, SmtpSettings
from tests.providers.conftest import Mailbox
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
        ("reject@example.com", "recipient_refused", False),
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
