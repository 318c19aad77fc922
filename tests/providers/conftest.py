"""Local stand-ins for the providers: an aiohttp server and an aiosmtpd SMTP server.

The HTTP server records every request and answers from a script (status, JSON body, headers,
optional delay); tests then check the recorded requests against the provider's documented
format. Every server is stopped when its test ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from omnistream.devstack import free_port


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class FakeServer:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    script: list[Reply] = field(default_factory=lambda: [Reply()])

    def answer(self, *replies: Reply) -> None:
        self.script = list(replies)


@pytest.fixture
async def http_server() -> AsyncIterator[FakeServer]:
    server = FakeServer(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        server.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.query),
                {k.lower(): v for k, v in request.headers.items()},
                await request.read(),
            )
        )
        reply = server.script.pop(0) if len(server.script) > 1 else server.script[0]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.json_response(reply.json, status=reply.status, headers=reply.headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


class Mailbox:
    """aiosmtpd handler: keeps messages; recipients starting with ``reject`` get 550,
    ``busy`` get 451."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, bytes]] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("reject"):
            return "550 5.1.1 no such user"
        if address.startswith("busy"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        self.messages.append((envelope, content))
        return "250 Message accepted"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()
