"""``POST /webhooks/{provider}``: provider delivery callbacks in, events on the customer topic.

Served by the public listener (``runtime/listeners.py``), the one port providers reach; the
internal listener does not route it. Verification (signature, timestamp skew, replay) is
``channels.receipts.ReceiptHandler``'s job; this route only reads the request, asks the handler,
and produces the events to the customer's partition, answering with the handler's status when
it refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from omnistream.channels.receipts import ReceiptRejected
from omnistream.clock import utcnow
from omnistream.domain.identity import route_key

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["webhook_handler"]

log = logging.getLogger(__name__)


def webhook_handler(runtime: Runtime) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler of ``POST /webhooks/{provider}`` for this worker."""
    handler = runtime.channels.receipts
    public = runtime.settings.public_base_url

    async def post(request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        body = await request.read()
        url = f"{public.rstrip('/')}{request.path_qs}" if public else str(request.url)
        try:
            events = await handler.handle_webhook(
                provider, dict(request.headers), body, utcnow(), url
            )
        except ReceiptRejected as rejected:
            return web.json_response({"error": rejected.reason}, status=rejected.status)
        for event in events:
            await runtime.topics.customer_events.send(
                key=route_key(event).encode(), value=event.to_json()
            )
        return web.json_response({"accepted": len(events)})

    return post
