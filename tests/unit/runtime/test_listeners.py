"""The two listeners (issue 16): the bearer check, the internal listener's middleware on Faust's
own web server (with Faust's /router and /table views off), and the public listener's routes."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest
from pydantic import SecretStr

from omnistream.config import Settings
from omnistream.observability.metrics import REGISTRY, M
from omnistream.ops.kafka_security import KafkaSecurity
from omnistream.runtime.app import _faust_app
from omnistream.runtime.listeners import MAX_BODY_BYTES, PublicListener, public_app
from omnistream.runtime.web_auth import check_bearer, internal_auth, warn_if_unconfigured

TOKEN = "t" * 32
OLD = "o" * 32
TOKENS = (SecretStr(OLD), SecretStr(TOKEN))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("header", "tokens", "expected"),
    [
        (f"Bearer {TOKEN}", TOKENS, None),
        (f"bearer {OLD}", TOKENS, None),  # rotation: the old token still works; scheme any case
        (f"Bearer {TOKEN}x", TOKENS, "invalid"),
        ("Bearer " + "é" * 32, TOKENS, "invalid"),  # non-ASCII: refused, not a TypeError
        (f"Basic {TOKEN}", TOKENS, "missing"),
        ("Bearer ", TOKENS, "missing"),
        (None, TOKENS, "missing"),
        (f"Bearer {TOKEN}", (), "unconfigured"),  # no token configured: nobody gets in
    ],
)
def test_check_bearer(header: str | None, tokens: tuple[SecretStr, ...], expected: str) -> None:
    assert check_bearer(header, tokens) == expected


def test_tokens_are_read_comma_separated_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISTREAM_INTERNAL_TOKENS", f" {OLD} ,{TOKEN},")
    settings = Settings()
    assert [t.get_secret_value() for t in settings.internal_tokens] == [OLD, TOKEN]
    assert TOKEN not in repr(settings) and not settings.metrics_open
    assert (settings.web_host, settings.public_host) == ("127.0.0.1", "127.0.0.1")
    assert (settings.web_port, settings.public_port) == (6066, 6067)


def test_a_worker_without_tokens_warns_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        warn_if_unconfigured(Settings(internal_tokens=()))
        warn_if_unconfigured(Settings(internal_tokens=TOKENS))
    (record,) = caplog.records
    assert "OMNISTREAM_INTERNAL_TOKENS is not set" in record.getMessage()


def refused(reason: str) -> float:
    return M.internal_requests_refused.labels(reason)._value.get()


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"secret": "data"})


@pytest.fixture
def guarded() -> Any:
    async def client(**settings: Any) -> TestClient[web.Request, web.Application]:
        app = web.Application(middlewares=[internal_auth(Settings(**settings))])
        app.router.add_get("/metrics", ok)
        app.router.add_get("/customers/{key}", ok)
        test_client = TestClient(TestServer(app))
        await test_client.start_server()
        return test_client

    return client


async def test_internal_routes_answer_401_without_a_valid_token(guarded: Any) -> None:
    client = await guarded(internal_tokens=TOKENS)
    try:
        before = refused("missing"), refused("invalid")
        response = await client.get("/customers/c-1")
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
        assert "secret" not in await response.text()
        wrong = await client.get("/customers/c-1", headers=bearer("nope" * 8))
        assert wrong.status == 401 and 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
        assert (await client.get("/metrics")).status == 401
        assert (refused("missing"), refused("invalid")) == (before[0] + 2, before[1] + 1)
        for token in (TOKEN, OLD):
            assert (await client.get("/customers/c-1", headers=bearer(token))).status == 200
    finally:
        await client.close()


async def test_no_token_configured_refuses_everyone(guarded: Any) -> None:
    client = await guarded(internal_tokens=())
    try:
        response = await client.get("/customers/c-1", headers=bearer(TOKEN))
        assert response.status == 401
        assert (await response.json())["reason"] == "unconfigured"
    finally:
        await client.close()


async def test_metrics_open_opens_metrics_only(guarded: Any) -> None:
    client = await guarded(internal_tokens=TOKENS, metrics_open=True)
    try:
        assert (await client.get("/metrics")).status == 200
        assert (await client.get("/customers/c-1")).status == 401
        assert (await client.post("/metrics")).status == 401  # only a GET of /metrics is open
    finally:
        await client.close()


async def test_faust_web_server_has_no_router_or_table_views_and_checks_tokens() -> None:
    """The internal listener is Faust's own server: its /router and /table views (which read
    table rows and map keys to workers) are gone, and the middleware sees every request."""
    app = _faust_app(
        Settings(app_id="listeners-test", broker="kafka://127.0.0.1:1"), KafkaSecurity()
    )
    faust_web = app.web
    faust_web.web_app.middlewares.append(internal_auth(Settings(internal_tokens=TOKENS)))
    faust_web.init_server()
    async with TestClient(TestServer(faust_web.web_app)) as client:
        for path in ("/router/", "/table/customers/", "/graph/", "/assignment/"):
            assert (await client.get(path)).status == 401, path
            assert (await client.get(path, headers=bearer(TOKEN))).status == 404, path
        assert (await client.get("/", headers=bearer(TOKEN))).status == 200  # Faust's index


@pytest.fixture
async def public() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async def readiness() -> dict[str, Any]:
        return {"ready": False, "journeys": {"welcome": "v1"}, "redis": True}

    async def webhook(request: web.Request) -> web.Response:
        await request.read()  # as receipts.webhook_handler does: the size cap applies here
        return web.json_response({"provider": request.match_info["provider"]})

    app = public_app(lambda: {"live": True, "version": "x"}, readiness, webhook)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_public_listener_serves_providers_and_probes_only(
    public: TestClient[web.Request, web.Application],
) -> None:
    for path in ("/customers/c-1", "/metrics", "/router/", "/table/customers/"):
        assert (await public.get(path)).status == 404, path
    health = await public.get("/health")
    assert (health.status, await health.json()) == (200, {"live": True})
    ready = await public.get("/ready")
    assert (ready.status, await ready.json()) == (503, {"ready": False})  # no details here
    hook = await public.post("/webhooks/twilio", data=b"{}")
    assert (hook.status, await hook.json()) == (200, {"provider": "twilio"})
    too_big = await public.post("/webhooks/twilio", data=io.BytesIO(b"x" * (MAX_BODY_BYTES + 1)))
    assert too_big.status == 413


async def test_public_listener_service_binds_port_zero_and_stops() -> None:
    async def readiness() -> dict[str, Any]:
        return {"ready": True}

    async def webhook(request: web.Request) -> web.Response:
        return web.json_response({})

    listener = PublicListener(
        public_app(lambda: {"live": True}, readiness, webhook), "127.0.0.1", 0
    )
    await listener.start()
    try:
        port = listener.port
        assert port
        async with ClientSession() as session, session.get(f"http://127.0.0.1:{port}/ready") as r:
            assert (r.status, await r.json()) == (200, {"ready": True})
    finally:
        await listener.stop()
    assert listener.port is None


def test_refusals_are_exported() -> None:
    assert "omnistream_internal_requests_refused_total" in generate_latest(REGISTRY).decode()
