"""The worker's two HTTP listeners (DESIGN.md §4, docs/operations.md "Listeners and tokens").

- **Internal** (``OMNISTREAM_WEB_HOST:OMNISTREAM_WEB_PORT``, default 127.0.0.1:6066): Faust's
  own web server with ``/metrics``, ``/ready``, ``/health`` and ``/customers/{key}``; every route
  needs a bearer token (``runtime/web_auth.py``). It is also the canonical URL Faust's table
  routing forwards ``/customers`` requests to, so workers must reach each other on it. Faust's
  built-in ``/router``, ``/table``, ``/graph`` and statistics views are off (``runtime/app.py``).
- **Public** (``OMNISTREAM_PUBLIC_HOST:OMNISTREAM_PUBLIC_PORT``, default 127.0.0.1:6067): a
  small aiohttp server with only what outsiders must reach: ``POST /webhooks/{provider}``
  (signed by the provider), ``GET /health`` and ``GET /ready``. Probes cannot send a secret
  header (a Kubernetes probe's headers are plain text in the pod spec), so these two answer
  without a token and say only ``{"live": bool}`` / ``{"ready": bool}``; the details (journey
  versions, partitions, Redis) stay on the internal listener.

The public listener is a child service of Faust's web server: it starts with it (after the
producer, so a webhook can always be produced, and before table recovery, so liveness probes
answer during a long recovery) and stops with it, before the producer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from mode import Service

from omnistream.runtime import receipts
from omnistream.runtime import web as pages
from omnistream.runtime.web_auth import internal_auth, warn_if_unconfigured

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["MAX_BODY_BYTES", "PublicListener", "install", "public_app"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 1024 * 1024
"""Largest request body the public listener reads (aiohttp answers 413 past it): a provider's
callback batch is a few KB; nothing outside should make a worker buffer more."""

Report = Callable[[], dict[str, Any]]
AsyncReport = Callable[[], Awaitable[dict[str, Any]]]
WebhookHandler = Callable[[web.Request], Awaitable[web.Response]]


def public_app(health: Report, readiness: AsyncReport, webhook: WebhookHandler) -> web.Application:
    """The public routes, and nothing else: any other path is a 404."""

    async def health_page(request: web.Request) -> web.Response:
        live = bool(health()["live"])
        return web.json_response({"live": live}, status=200 if live else 503)

    async def ready_page(request: web.Request) -> web.Response:
        ready = bool((await readiness())["ready"])
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/health", health_page, allow_head=False)
    app.router.add_get("/ready", ready_page, allow_head=False)
    app.router.add_post("/webhooks/{provider}", webhook)
    return app


class PublicListener(Service):
    """Serves ``app`` on ``host:port`` while the service runs (port 0: any free port)."""

    def __init__(self, app: web.Application, host: str, port: int, **kwargs: Any) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._host = host
        self._port = port
        super().__init__(**kwargs)

    @property
    def port(self) -> int | None:
        """The bound port once started (the real one when configured with 0)."""
        for address in self._runner.addresses:
            return int(address[1])
        return None

    async def on_start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        log.info("public listener on http://%s:%s", self._host, self.port)

    async def on_stop(self) -> None:
        await self._runner.cleanup()


def install(runtime: Runtime) -> PublicListener:
    """Guard the internal listener and attach the public one to it."""
    settings = runtime.settings
    internal = runtime.app.web
    internal.web_app.middlewares.append(internal_auth(settings))
    warn_if_unconfigured(settings)
    listener = PublicListener(
        public_app(
            lambda: pages.health(runtime),
            lambda: pages.readiness(runtime),
            receipts.webhook_handler(runtime),
        ),
        settings.public_host,
        settings.public_port,
    )
    internal.add_dependency(listener)
    return listener
