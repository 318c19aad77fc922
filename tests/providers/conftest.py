"""Local stand-ins for the providers: an aiohttp server and an aiosmtpd SMTP server.

The HTTP server records every request and answers from a script (status, JSON body, headers,
optional delay); tests then check the recorded requests against the provider's documented
format. Every server is stopped when its test ends.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

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
    raw: bytes | None = None
    """Answer these bytes instead of ``json``."""
    chunked: bool = False
    """Send ``raw`` with chunked transfer encoding (no Content-Length), in 64 KiB writes."""


@dataclass
class FakeServer:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    script: list[Reply] = field(default_factory=lambda: [Reply()])

    def answer(self, *replies: Reply) -> None:
        self.script = list(replies)


async def _answer(request: web.Request, reply: Reply) -> web.StreamResponse:
    if reply.raw is None:
        return web.json_response(reply.json, status=reply.status, headers=reply.headers)
    if not reply.chunked:
        return web.Response(body=reply.raw, status=reply.status, headers=reply.headers)
    response = web.StreamResponse(status=reply.status, headers=reply.headers)
    response.enable_chunked_encoding()
    await response.prepare(request)
    for start in range(0, len(reply.raw), 65536):
        await response.write(reply.raw[start : start + 65536])
    await response.write_eof()
    return response


@pytest.fixture
async def http_server() -> AsyncIterator[FakeServer]:
    async with _serve() as server:
        yield server


@pytest.fixture
async def other_http_server() -> AsyncIterator[FakeServer]:
    """A second origin (a redirect target)."""
    async with _serve() as server:
        yield server


@asynccontextmanager
async def _serve() -> AsyncIterator[FakeServer]:
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
        return await _answer(request, reply)

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
        self.logins: list[tuple[str, str, bool]] = []
        """(login, password, whether the session was under TLS) of every AUTH attempt."""

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode(), session.ssl is not None))
        return AuthResult(success=True)

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


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 (the client trusts it as its CA bundle)."""
    directory = tmp_path_factory.mktemp("tls")
    files = TlsFiles(directory / "cert.pem", directory / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(files.key), "-out", str(files.cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return files


SmtpFactory = Callable[..., tuple[Mailbox, int]]


@pytest.fixture
def smtp_factory() -> Iterator[SmtpFactory]:
    """Start an SMTP server with ``aiosmtpd.smtp.SMTP`` options (``tls_context`` offers
    STARTTLS; ``auth_require_tls=False`` takes AUTH in clear); all stopped at teardown."""
    controllers: list[Controller] = []

    def start(**options: Any) -> tuple[Mailbox, int]:
        mailbox = Mailbox()
        port = free_port()
        controller = Controller(
            mailbox,
            hostname="127.0.0.1",
            port=port,
            authenticator=mailbox.authenticate,
            **options,
        )
        controller.start()
        controllers.append(controller)
        return mailbox, port

    try:
        yield start
    finally:
        for controller in controllers:
            controller.stop()
