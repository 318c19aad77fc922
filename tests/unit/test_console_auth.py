"""The console's browser auth: the login form's cookie opens /console and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from omnistream.config import Settings
from omnistream.console.routes import Console
from omnistream.console.session import csrf_token, csrf_valid, same_origin
from omnistream.runtime.web_auth import CONSOLE_COOKIE, check_cookie, internal_auth, is_console

TOKEN = "t" * 32
OLD = "o" * 32
TOKENS = (SecretStr(OLD), SecretStr(TOKEN))

Client = TestClient[web.Request, web.Application]


async def secret_page(request: web.Request) -> web.Response:
    return web.Response(text="<p>secret console data</p>", content_type="text/html")


async def secret_json(request: web.Request) -> web.Response:
    return web.json_response({"secret": "data"})


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    settings = Settings(internal_tokens=TOKENS)
    console = Console(SimpleNamespace(settings=settings))  # type: ignore[arg-type]
    app = web.Application(middlewares=[internal_auth(settings)])
    app.router.add_get("/console/login", console.login_form)
    app.router.add_post("/console/login", console.login)
    app.router.add_get("/console", secret_page)
    app.router.add_get("/console/customers/{key}", secret_page)
    app.router.add_get("/customers/{key}", secret_json)
    app.router.add_get("/consoleish", secret_json)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"{CONSOLE_COOKIE}={value}"}


async def test_no_cookie_gets_the_login_required_page(client: Client) -> None:
    for path in ("/console", "/console/customers/c-1"):
        response = await client.get(path)
        text = await response.text()
        assert response.status == 401, path
        assert response.content_type == "text/html"
        assert 'data-testid="login-required"' in text and 'name="token"' in text
        assert "secret" not in text


async def test_a_wrong_cookie_is_refused(client: Client) -> None:
    response = await client.get("/console", headers=cookie(TOKEN + "x"))
    assert response.status == 401
    assert "secret" not in await response.text()


async def test_a_good_cookie_or_bearer_opens_the_console(client: Client) -> None:
    for token in (TOKEN, OLD):
        response = await client.get("/console", headers=cookie(token))
        assert response.status == 200 and "secret" in await response.text()
    bearer = await client.get("/console", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status == 200


async def test_the_cookie_does_not_open_other_routes(client: Client) -> None:
    for path in ("/customers/c-1", "/consoleish"):
        response = await client.get(path, headers=cookie(TOKEN))
        assert response.status == 401, path
        assert (await response.json())["reason"] == "missing"


async def test_login_sets_a_strict_httponly_console_cookie(client: Client) -> None:
    form = await client.get("/console/login")
    assert form.status == 200 and 'name="token"' in await form.text()
    response = await client.post("/console/login", data={"token": TOKEN}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console"
    morsel = SimpleCookie(response.headers["Set-Cookie"])[CONSOLE_COOKIE]
    assert morsel.value == TOKEN
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/console"


async def test_login_with_a_wrong_token_sets_nothing(client: Client) -> None:
    response = await client.post("/console/login", data={"token": "nope"}, allow_redirects=False)
    assert response.status == 401
    assert "Set-Cookie" not in response.headers
    assert 'data-testid="login-error"' in await response.text()


@pytest.mark.parametrize(
    ("value", "tokens", "expected"),
    [
        (TOKEN, TOKENS, None),
        (TOKEN + "x", TOKENS, "invalid"),
        ("é" * 32, TOKENS, "invalid"),
        ("", TOKENS, "missing"),
        (None, TOKENS, "missing"),
        (TOKEN, (), "unconfigured"),
    ],
)
def test_check_cookie(value: str | None, tokens: Any, expected: str | None) -> None:
    assert check_cookie(value, tokens) == expected


def test_is_console_matches_the_prefix_as_a_path_segment() -> None:
    assert is_console("/console") and is_console("/console/dlq")
    assert not is_console("/consoleish") and not is_console("/customers/console")


def test_csrf_token_is_tied_to_the_session() -> None:
    token = csrf_token(TOKEN)
    assert csrf_valid(TOKEN, token)
    assert not csrf_valid(OLD, token)
    assert not csrf_valid(TOKEN, token[:-1] + "0" if token[-1] != "0" else token[:-1] + "1")
    assert not csrf_valid(None, token) and not csrf_valid(TOKEN, None)
    assert TOKEN not in token


@pytest.mark.parametrize(
    ("origin", "host", "expected"),
    [
        (None, "127.0.0.1:6066", True),
        ("http://127.0.0.1:6066", "127.0.0.1:6066", True),
        ("http://evil.example", "127.0.0.1:6066", False),
        ("null", "127.0.0.1:6066", False),
    ],
)
def test_same_origin(origin: str | None, host: str, expected: bool) -> None:
    assert same_origin(origin, host) is expected
