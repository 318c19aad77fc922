"""Provider answers that mean "this address will never work" map to one reason vocabulary.

FCM, Telegram, Viber and SMTP each say it their own way; the dispatcher reports
``message_failed`` with one of ``address_invalid``, ``recipient_blocked`` or
``token_unregistered`` (permanent), so journeys, metrics and operators read one vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from omnistream.devstack import free_port
from omnistream.ports import Outgoing, ProviderError
from omnistream.providers.base import ADDRESS_INVALID, RECIPIENT_BLOCKED, TOKEN_UNREGISTERED
from omnistream.providers.fcm import FcmProvider
from omnistream.providers.smtp import SmtpProvider, SmtpSettings
from omnistream.providers.telegram import TelegramProvider
from omnistream.providers.viber import ViberProvider
from tests.providers.conftest import FakeServer, Mailbox, Reply
from tests.providers.test_http_providers import outgoing
from tests.unit.channels.factory import (
    T0,
    FakeTime,
    ScriptedProvider,
    make_send,
    memory_dispatcher,
    types,
)


async def _failure(provider: Any, out: Outgoing) -> ProviderError:
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.send(out)
    finally:
        await provider.aclose()
    return caught.value


def _fcm_error(code: int, status: str, error_code: str, token_field: bool = False) -> Any:
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}
    ]
    if token_field:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "message.token", "description": "bad token"}],
            }
        )
    return {"error": {"code": code, "message": "x", "status": status, "details": details}}


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (404, _fcm_error(404, "NOT_FOUND", "UNREGISTERED"), TOKEN_UNREGISTERED),
        (400, _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", True), ADDRESS_INVALID),
        (400, _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), "fcm_invalid_argument"),
        (403, _fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), ADDRESS_INVALID),
    ],
)
async def test_fcm_token_errors(
    http_server: FakeServer, status: int, body: Any, reason: str
) -> None:
    http_server.answer(Reply(status, body))
    provider = FcmProvider(http_server.url, "shop", SecretStr("ya29.token"))
    error = await _failure(provider, outgoing("mobile_push", "device-token-1"))
    assert (error.reason, error.transient) == (reason, False)


@pytest.mark.parametrize(
    ("status", "description", "reason"),
    [
        (400, "Bad Request: chat not found", ADDRESS_INVALID),
        (403, "Forbidden: bot was blocked by the user", RECIPIENT_BLOCKED),
        (403, "Forbidden: user is deactivated", ADDRESS_INVALID),
        (400, "Bad Request: message text is empty", "http_400"),
    ],
)
async def test_telegram_recipient_errors(
    http_server: FakeServer, status: int, description: str, reason: str
) -> None:
    http_server.answer(
        Reply(status, {"ok": False, "error_code": status, "description": description})
    )
    provider = TelegramProvider(http_server.url, SecretStr("123:ABC"))
    error = await _failure(provider, outgoing("telegram", "987654"))
    assert (error.reason, error.transient) == (reason, False)


@pytest.mark.parametrize(
    ("code", "reason"),
    [(5, ADDRESS_INVALID), (6, RECIPIENT_BLOCKED), (3, "viber_3")],
)
async def test_viber_receiver_status_codes(http_server: FakeServer, code: int, reason: str) -> None:
    http_server.answer(Reply(200, {"status": code, "status_message": "x"}))
    provider = ViberProvider(http_server.url, SecretStr("vtok"), "Shop")
    error = await _failure(provider, outgoing("viber", "01234567890A="))
    assert (error.reason, error.transient) == (reason, False)


class _Replies(Mailbox):
    """Answers RCPT with the reply line named by the local part (``r550-5.1.1@...``)."""

    replies: ClassVar[dict[str, str]] = {
        "r550-511": "550 5.1.1 no such user",
        "r550-571": "550 5.7.1 relaying denied",
        "r550": "550 mailbox unavailable",
        "r553": "553 mailbox name not allowed",
        "r552-522": "552 5.2.2 mailbox full",
        "r550-521": "550 5.2.1 mailbox disabled",
    }

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        local = address.split("@", 1)[0]
        if local in self.replies:
            return self.replies[local]
        return await super().handle_RCPT(server, session, envelope, address, options)


@pytest.fixture
def smtp_replies() -> Iterator[int]:
    port = free_port()
    controller = Controller(_Replies(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.mark.parametrize(
    ("local", "reason"),
    [
        ("r550-511", ADDRESS_INVALID),
        ("r550-521", ADDRESS_INVALID),
        ("r550", ADDRESS_INVALID),
        ("r553", ADDRESS_INVALID),
        ("r550-571", "recipient_refused"),
        ("r552-522", "recipient_refused"),
    ],
)
async def test_smtp_permanent_rejections(smtp_replies: int, local: str, reason: str) -> None:
    provider = SmtpProvider(
        SmtpSettings(host="127.0.0.1", port=smtp_replies, sender="shop@example.com",
                     start_tls=False),
        timeout_s=5,
    )  # fmt: skip
    out = outgoing("email", f"{local}@example.com")
    error = await _failure(provider, out)
    assert (error.reason, error.transient) == (reason, False)


async def test_unregistered_token_fails_with_the_reason_and_falls_back(
    http_server: FakeServer,
) -> None:
    http_server.answer(Reply(404, _fcm_error(404, "NOT_FOUND", "UNREGISTERED")))
    fcm = FcmProvider(http_server.url, "shop", SecretStr("ya29.token"))
    dispatcher = memory_dispatcher(FakeTime(), {"email": fcm, "sms": ScriptedProvider()})
    try:
        result = await dispatcher.handle(make_send(category="transactional"), T0)
    finally:
        await fcm.aclose()
    assert types(result) == ["message_failed", "message_fallback"]
    failed = result.outcomes[0]
    assert failed.properties["reason"] == TOKEN_UNREGISTERED
