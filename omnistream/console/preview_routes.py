"""Message preview and test send: ``.../steps/{step}/preview`` and ``.../test-send``.

The preview renders a send step's templates for one customer on the worker that owns the row
(``console/forward.py``); without a customer it renders for an empty profile. The test send is
the console's only write: it renders the same way and calls the channel's real provider
(``runtime.channels``, the instances the channel agents use) once, to the address the operator
typed, with a ``console-test-`` send id. It touches no journey state, no dedup record and no
frequency cap, and is counted in ``omnistream_console_test_sends_total``.

CSRF: a browser session must send the form token derived from its cookie
(``console/session.py``) and, when the browser sends ``Origin``, come from this listener. A
request with a bearer header needs neither (a browser never adds one on its own).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from omnistream.clock import utcnow
from omnistream.console.forward import forwarded, on_owner
from omnistream.console.pages_customer import preview_page
from omnistream.console.preview import Rendered, outgoing_for_test, render_step
from omnistream.console.responses import html, problem
from omnistream.console.session import csrf_token, csrf_valid, same_origin
from omnistream.domain.state import CustomerState
from omnistream.journey.model import Journey, SendStep
from omnistream.observability.metrics import M
from omnistream.ports import ProviderError
from omnistream.runtime.web_auth import CONSOLE_COOKIE, check_bearer

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["MAX_ADDRESS", "PreviewRoutes"]

log = logging.getLogger(__name__)

MAX_ADDRESS: Final = 512
EMPTY_KEY: Final = "console-preview"


class PreviewRoutes:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def _step(self, request: web.Request) -> tuple[Journey, SendStep]:
        journey_id, step_id = request.match_info["journey_id"], request.match_info["step_id"]
        journey = self.runtime.catalog.journeys.get(journey_id)
        step = next((s for s in journey.steps if s.id == step_id), None) if journey else None
        if journey is None or not isinstance(step, SendStep):
            raise web.HTTPNotFound(text=f"no send step {step_id!r} in journey {journey_id!r}")
        return journey, step

    def _state(self, customer: str) -> CustomerState | None:
        if not customer:
            return CustomerState(key=EMPTY_KEY)
        raw = self.runtime.customers.get(customer.encode())
        return CustomerState.from_bytes(raw) if raw else None

    async def preview(self, request: web.Request) -> web.StreamResponse:
        journey, step = self._step(request)
        customer = request.query.get("customer", "").strip()

        async def here() -> web.StreamResponse:
            return self._page(request, journey, step, customer)

        if not customer:
            return await here()
        return await on_owner(self.runtime, request, customer, here)

    def _page(
        self, request: web.Request, journey: Journey, step: SendStep, customer: str,
        notice: str | None = None,
    ) -> web.Response:  # fmt: skip
        state = self._state(customer)
        if state is None:
            return problem("Unknown customer", f"No customer {customer!r}.", 404)
        rendered = render_step(self.runtime.catalog, journey, step, state, utcnow())
        cookie = request.cookies.get(CONSOLE_COOKIE)
        csrf = csrf_token(cookie) if cookie else None
        return html(preview_page(journey.id, step.id, customer, rendered, csrf, notice))

    def _refusal(self, request: web.Request, form: Mapping[str, Any]) -> str | None:
        """Why a test send is refused as cross-site, or ``None``."""
        tokens = self.runtime.settings.internal_tokens
        if check_bearer(request.headers.get("Authorization"), tokens) is None:
            return None
        if not csrf_valid(request.cookies.get(CONSOLE_COOKIE), str(form.get("csrf", ""))):
            return "the form token is missing or wrong (reload the preview)"
        if not forwarded(request) and not same_origin(
            request.headers.get("Origin"), request.headers.get("Host")
        ):
            return "the request comes from another origin"
        return None

    async def test_send(self, request: web.Request) -> web.StreamResponse:
        journey, step = self._step(request)
        form = await request.post()
        refusal = self._refusal(request, form)
        if refusal is not None:
            return problem("Test send refused", refusal, 403)
        customer = str(form.get("customer", "")).strip()
        channel = str(form.get("channel", ""))
        address = str(form.get("address", "")).strip()
        if not address or len(address) > MAX_ADDRESS:
            return problem("No address", f"Give an address (at most {MAX_ADDRESS} chars).", 400)

        async def here() -> web.StreamResponse:
            notice = await self._send(journey, step, customer, channel, address)
            return self._page(request, journey, step, customer, notice)

        if not customer:
            return await here()
        return await on_owner(self.runtime, request, customer, here)

    async def _send(
        self, journey: Journey, step: SendStep, customer: str, channel: str, address: str
    ) -> str:
        """Send one test message; the notice the page shows."""
        state = self._state(customer)
        if state is None:
            return f"No customer {customer!r}: nothing sent."
        rendered = {r.channel: r for r in render_step(
            self.runtime.catalog, journey, step, state, utcnow())}  # fmt: skip
        item: Rendered | None = rendered.get(channel)
        adapters = self.runtime.channels
        provider = adapters.providers.get(adapters.channels.get(channel, ""))
        why = _unsendable(item, provider is not None)
        if why is not None or item is None or provider is None:
            label = channel if channel in step.content else "unknown"
            M.console_test_sends.labels(label, "not_sent").inc()
            return f"Not sent on {channel!r}: {why}."
        outgoing = outgoing_for_test(item, state.key, address, journey, step)
        try:
            result = await provider.send(outgoing)
        except ProviderError as exc:
            M.console_test_sends.labels(channel, exc.reason).inc()
            return f"Test on {channel} failed: {exc.reason} (provider {provider.name})."
        M.console_test_sends.labels(channel, "sent").inc()
        log.info("console test send %s on %s via %s", outgoing.send_id, channel, provider.name)
        return (
            f"Test sent on {channel} via {provider.name} (send id {outgoing.send_id}, "
            f"provider id {result.provider_message_id or '-'})."
        )


def _unsendable(item: Rendered | None, served: bool) -> str | None:
    if item is None:
        return "the step has no such channel"
    if item.message is None:
        return f"its template failed: {item.error}"
    return None if served else "no provider serves it on this worker"
