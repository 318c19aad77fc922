"""The console's routes on the internal listener (docs/console.md).

Plain aiohttp handlers on Faust's web server, so ``runtime/web_auth.py``'s middleware runs before
each of them: a bearer token or the console cookie, nothing else. Read-only except the test
send. Where the data lives decides how a page is answered:

- journey figures (stats cells) and live waiting figures (rows) are partitioned: every worker
  contributes its share and this worker merges them (``console/live.py`` says why even the
  "global" stats table has to be asked this way);
- a customer's row (customer page, preview, test send) lives on one worker: forwarded there
  (``console/forward.py``);
- dead letters and timelines are read from Kafka with a bounded read (``console/tail.py``).
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import orjson
from aiohttp import web

from omnistream.clock import utcnow
from omnistream.console import pages_customer as customer_pages
from omnistream.console import pages_journeys as journey_pages
from omnistream.console.forward import on_owner
from omnistream.console.graph import graph_model
from omnistream.console.live import LIVE_PATH, fleet_figures, local_figures
from omnistream.console.pages_auth import login_page
from omnistream.console.preview_routes import PreviewRoutes
from omnistream.console.reads import customer_records, dead_letters
from omnistream.console.responses import html, problem
from omnistream.domain.state import CustomerState
from omnistream.journey.figures import WINDOW_CHOICES, journey_figures, overview, valid_window
from omnistream.observability.metrics import M
from omnistream.runtime.customer_api import customer_view
from omnistream.runtime.web_auth import CONSOLE_COOKIE, CONSOLE_LOGIN, check_cookie

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["STATIC", "install"]

log = logging.getLogger(__name__)

STATIC: Final = {
    "console.css": "text/css",
    "console.js": "application/javascript",
    "elk.bundled.js": "application/javascript",
    "elk.LICENSE.md": "text/markdown",
}
"""Every asset the console serves, all shipped in the package (no CDN)."""


class Console:
    """The handlers, closed over one worker's runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._static: dict[str, bytes] = {}

    async def login_form(self, request: web.Request) -> web.Response:
        return html(login_page())

    async def login(self, request: web.Request) -> web.Response:
        """Check the pasted token like a bearer token; keep it in an HttpOnly cookie."""
        token = str((await request.post()).get("token", ""))
        refusal = check_cookie(token, self.runtime.settings.internal_tokens)
        if refusal is not None:
            M.internal_requests_refused.labels(refusal).inc()
            return html(login_page("That token is not one of this worker's."), 401)
        answer = web.HTTPSeeOther("/console")
        answer.set_cookie(CONSOLE_COOKIE, token, path="/console", httponly=True, samesite="Strict")
        raise answer

    def _refusal(self, window: str) -> web.Response | None:
        if not valid_window(window):
            choices = ", ".join(WINDOW_CHOICES)
            return problem("Unknown window", f"Unknown window {window!r}; one of {choices}.", 400)
        if self.runtime.journey_stats is None:
            detail = "Journey stats are off (OMNISTREAM_JOURNEY_EVENTS=false)."
            return problem("No figures", detail, 404)
        return None

    async def journeys(self, request: web.Request) -> web.Response:
        window, now = _window(request), utcnow()
        refusal = self._refusal(window)
        if refusal is not None:
            return refusal
        fleet = await fleet_figures(self.runtime, window, now)
        headline = overview(self.runtime.catalog, fleet["cells"], window, now)
        active = {jid: int(j["active"]) for jid, j in fleet["journeys"].items()}
        return html(journey_pages.journeys_page(headline, active, fleet))

    async def _journey_figures(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | web.Response:
        """(stats dict, graph model, fleet answer) of the request's journey and window, or the
        page that refuses it."""
        journey_id, window, now = request.match_info["journey_id"], _window(request), utcnow()
        journey = self.runtime.catalog.journeys.get(journey_id)
        if journey is None:
            return problem("Unknown journey", f"No journey {journey_id!r} is loaded.", 404)
        refusal = self._refusal(window)
        if refusal is not None:
            return refusal
        fleet = await fleet_figures(self.runtime, window, now)
        cells = fleet["cells"].get(journey_id, {})
        stats = journey_figures(self.runtime.catalog, journey_id, cells, window, now)
        steps = fleet["journeys"].get(journey_id, {}).get("steps", {})
        return stats, graph_model(journey, cells, steps), fleet

    async def journey(self, request: web.Request) -> web.Response:
        figures = await self._journey_figures(request)
        if isinstance(figures, web.Response):
            return figures
        stats, model, fleet = figures
        journey = self.runtime.catalog.journeys[model["journey_id"]]
        sends = [s.id for s in journey.steps if s.type == "send"]
        return html(journey_pages.journey_page(stats, model, fleet, sends))

    async def graph_json(self, request: web.Request) -> web.Response:
        """The graph model the script lays out with elkjs (same figures as the page)."""
        figures = await self._journey_figures(request)
        if isinstance(figures, web.Response):
            return web.json_response({"error": figures.reason}, status=figures.status)
        return web.json_response(figures[1], dumps=lambda v: orjson.dumps(v).decode())

    async def live(self, request: web.Request) -> web.Response:
        """This worker's own share (what ``fleet_figures`` asks every peer for)."""
        window = _window(request)
        if not valid_window(window):
            return web.json_response({"error": f"unknown window {window!r}"}, status=400)
        figures = local_figures(self.runtime, window, utcnow())
        return web.json_response(figures, dumps=lambda v: orjson.dumps(v).decode())

    async def find_customer(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "").strip()
        if not key:
            return problem("No customer", "Type a customer key.", 400)
        raise web.HTTPSeeOther(f"/console/customers/{quote(key, safe='')}")

    async def customer(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        return await on_owner(self.runtime, request, key, lambda: self._customer_here(key))

    async def _customer_here(self, key: str) -> web.Response:
        runtime = self.runtime
        raw = runtime.customers.get(key.encode())
        if not raw:
            alias = runtime.aliases.get(key.encode())
            if alias:
                raise web.HTTPSeeOther(f"/console/customers/{quote(alias.decode(), safe='')}")
            return problem("Unknown customer", f"No customer {key!r}.", 404)
        view = customer_view(CustomerState.from_bytes(raw))
        records, note = await customer_records(runtime, key)
        return html(customer_pages.customer_page(view, records, note))

    async def dlq(self, request: web.Request) -> web.Response:
        records, note = await dead_letters(self.runtime)
        return html(customer_pages.dlq_page(records, note))

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        if name not in self._static:
            self._static[name] = (
                resources.files("omnistream.console").joinpath("static", name).read_bytes()
            )
        return web.Response(
            body=self._static[name],
            content_type=STATIC[name],
            headers={"Cache-Control": "private, max-age=3600"},
        )


def _window(request: web.Request) -> str:
    return request.query.get("window", "day")


def install(runtime: Runtime) -> None:
    """Add the console's routes to the internal listener (before it starts)."""
    console = Console(runtime)
    previews = PreviewRoutes(runtime)
    router = runtime.app.web.web_app.router
    router.add_get(CONSOLE_LOGIN, console.login_form)
    router.add_post(CONSOLE_LOGIN, console.login)
    router.add_get("/console", console.journeys)
    router.add_get("/console/journeys/{journey_id}", console.journey)
    router.add_get("/console/journeys/{journey_id}/graph.json", console.graph_json)
    steps = "/console/journeys/{journey_id}/steps/{step_id}"
    router.add_get(f"{steps}/preview", previews.preview)
    router.add_post(f"{steps}/test-send", previews.test_send)
    router.add_get("/console/customers", console.find_customer)
    router.add_get("/console/customers/{key}", console.customer)
    router.add_get("/console/dlq", console.dlq)
    router.add_get(LIVE_PATH, console.live)
    router.add_get("/console/static/{name}", console.static)
