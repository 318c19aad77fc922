"""SMTP: a server that refuses the recipient only at DATA (after the message) says so too.

RCPT refusals are in test_permanent_outcomes.py; here the server accepts RCPT and answers DATA
with a permanent reply. An enhanced 5.1.x / 5.2.1 means the mailbox: ``address_invalid``, so
the profile drops the address; anything else at DATA stays ``smtp_<code>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from omnistream.devstack import free_port
from omnistream.ports import ProviderError
from omnistream.providers.base import ADDRESS_INVALID
from omnistream.providers.smtp import SmtpProvider, SmtpSettings
from tests.providers.test_http_providers import outgoing

REPLIES = {
    "d550-511": "550 5.1.1 user unknown",
    "d550-521": "550 5.2.1 mailbox disabled",
    "d550": "550 rejected",
    "d554-571": "554 5.7.1 message refused as spam",
}


class _DataRefusals:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        local = envelope.rcpt_tos[0].split("@", 1)[0]
        return REPLIES.get(local, "250 OK")


@pytest.fixture
def smtp_data() -> Iterator[int]:
    port = free_port()
    controller = Controller(_DataRefusals(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.mark.parametrize(
    ("local", "reason"),
    [
        ("d550-511", ADDRESS_INVALID),
        ("d550-521", ADDRESS_INVALID),
        ("d550", "smtp_550"),
        ("d554-571", "smtp_554"),
    ],
)
async def test_permanent_data_refusals(smtp_data: int, local: str, reason: str) -> None:
    provider = SmtpProvider(
        SmtpSettings(host="127.0.0.1", port=smtp_data, sender="shop@example.com", start_tls=False),
        timeout_s=5,
    )
    with pytest.raises(ProviderError) as caught:
        await provider.send(outgoing("email", f"{local}@example.com"))
    assert (caught.value.reason, caught.value.transient) == (reason, False)
