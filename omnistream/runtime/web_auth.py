"""Bearer tokens for the internal listener (DESIGN.md §4: internal HTTP is authenticated).

The internal listener (Faust's web server) serves customer data, metrics and readiness details,
so every request on it needs ``Authorization: Bearer <token>`` with one of
``OMNISTREAM_INTERNAL_TOKENS``. The check is an aiohttp middleware on that server, not a
decorator per route: it runs before any view (so before table routing forwards a request and
before a row is read), and a route added later is closed unless someone opens it on purpose.
No token configured means every request is refused: a forgotten setting never opens the data.
The one exception is ``/metrics`` when ``OMNISTREAM_METRICS_OPEN=true``.

The console (``/console...``, docs/console.md) is for browsers, which cannot send a bearer
header: there the same tokens are also accepted from the HttpOnly cookie that
``POST /console/login`` sets (compared the same way). The cookie opens ``/console...`` only, never
the JSON routes; ``/console/login`` itself is open (it checks the token it is given), and a
refused console request gets an HTML page with the login form instead of JSON.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Literal

from aiohttp import web
from pydantic import SecretStr

from omnistream.config import Settings
from omnistream.console.pages_auth import login_required
from omnistream.observability.metrics import M

__all__ = [
    "CONSOLE_COOKIE",
    "CONSOLE_LOGIN",
    "Handler",
    "Middleware",
    "Refusal",
    "check_bearer",
    "check_cookie",
    "internal_auth",
    "is_console",
    "warn_if_unconfigured",
]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
Refusal = Literal["missing", "invalid", "unconfigured"]

REALM: Final = 'Bearer realm="omnistream-internal"'
CONSOLE: Final = "/console"
CONSOLE_LOGIN: Final = "/console/login"
CONSOLE_COOKIE: Final = "omnistream_console"


def check_bearer(header: str | None, tokens: Sequence[SecretStr]) -> Refusal | None:
    """Why an ``Authorization`` header is refused, or ``None`` when it carries a known token.

    Compared as bytes with ``hmac.compare_digest`` against every configured token (no early
    exit), so neither the answer time nor a non-ASCII header tells which token came close.
    """
    if not tokens:
        return "unconfigured"
    scheme, _, presented = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return "missing"
    return None if _known(presented.strip(), tokens) else "invalid"


def check_cookie(value: str | None, tokens: Sequence[SecretStr]) -> Refusal | None:
    """Why a console cookie is refused, or ``None`` when it carries a known token."""
    if not tokens:
        return "unconfigured"
    if not value:
        return "missing"
    return None if _known(value, tokens) else "invalid"


def _known(presented: str, tokens: Sequence[SecretStr]) -> bool:
    given = presented.encode("utf-8", "surrogateescape")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token.get_secret_value().encode())
    return matched


def is_console(path: str) -> bool:
    """Is ``path`` one of the console's (where the cookie is accepted)?"""
    return path == CONSOLE or path.startswith(f"{CONSOLE}/")


def _refused(reason: Refusal) -> web.Response:
    challenge = REALM if reason != "invalid" else f'{REALM}, error="invalid_token"'
    return web.json_response(
        {"error": "unauthorized", "reason": reason},
        status=401,
        headers={"WWW-Authenticate": challenge},
    )


def _console_refused() -> web.Response:
    return web.Response(
        text=login_required(), status=401, content_type="text/html", charset="utf-8"
    )


def internal_auth(settings: Settings) -> Middleware:
    """The aiohttp middleware that guards every route of the internal listener."""
    tokens = settings.internal_tokens
    open_paths = frozenset({"/metrics"} if settings.metrics_open else ())

    @web.middleware
    async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "GET" and request.path in open_paths:
            return await handler(request)
        console = is_console(request.path)
        if console and request.path == CONSOLE_LOGIN:  # checks the token it is given
            return await handler(request)
        refusal = check_bearer(request.headers.get("Authorization"), tokens)
        if refusal is not None and console:
            refusal = check_cookie(request.cookies.get(CONSOLE_COOKIE), tokens)
        if refusal is not None:
            M.internal_requests_refused.labels(refusal).inc()
            return _console_refused() if console else _refused(refusal)
        return await handler(request)

    return authorize


def warn_if_unconfigured(settings: Settings) -> None:
    """Say once at start that the internal routes will refuse everyone."""
    if not settings.internal_tokens:
        log.warning(
            "OMNISTREAM_INTERNAL_TOKENS is not set: every internal route (/customers, /ready "
            "details%s) answers 401 on %s:%s",
            "" if settings.metrics_open else ", /metrics",
            settings.web_host,
            settings.web_port,
        )
