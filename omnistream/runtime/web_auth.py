"""Bearer tokens for the internal listener (DESIGN.md §4: internal HTTP is authenticated).

The internal listener (Faust's web server) serves customer data, metrics and readiness details,
so every request on it needs ``Authorization: Bearer <token>`` with one of
``OMNISTREAM_INTERNAL_TOKENS``. The check is an aiohttp middleware on that server, not a
decorator per route: it runs before any view (so before table routing forwards a request and
before a row is read), and a route added later is closed unless someone opens it on purpose.
No token configured means every request is refused: a forgotten setting never opens the data.
The one exception is ``/metrics`` when ``OMNISTREAM_METRICS_OPEN=true``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Literal

from aiohttp import web
from pydantic import SecretStr

from omnistream.config import Settings
from omnistream.observability.metrics import M

__all__ = [
    "Handler",
    "Middleware",
    "Refusal",
    "check_bearer",
    "internal_auth",
    "warn_if_unconfigured",
]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
Refusal = Literal["missing", "invalid", "unconfigured"]

REALM: Final = 'Bearer realm="omnistream-internal"'


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
    given = presented.strip().encode("utf-8", "surrogateescape")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token.get_secret_value().encode())
    return None if matched else "invalid"


def _refused(reason: Refusal) -> web.Response:
    challenge = REALM if reason != "invalid" else f'{REALM}, error="invalid_token"'
    return web.json_response(
        {"error": "unauthorized", "reason": reason},
        status=401,
        headers={"WWW-Authenticate": challenge},
    )


def internal_auth(settings: Settings) -> Middleware:
    """The aiohttp middleware that guards every route of the internal listener."""
    tokens = settings.internal_tokens
    open_paths = frozenset({"/metrics"} if settings.metrics_open else ())

    @web.middleware
    async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "GET" and request.path in open_paths:
            return await handler(request)
        refusal = check_bearer(request.headers.get("Authorization"), tokens)
        if refusal is not None:
            M.internal_requests_refused.labels(refusal).inc()
            return _refused(refusal)
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
