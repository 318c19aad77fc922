"""``POST /webhooks/{provider}``: provider delivery callbacks in, events on the customer topic.

Verification (signature, timestamp skew, replay) is ``channels.receipts.ReceiptHandler``'s job;
this route only reads the request, asks the handler, and produces the events to the customer's
partition, answering with the handler's status when it refuses.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from faust.web import View

from omnistream.channels.receipts import ReceiptRejected
from omnistream.clock import utcnow
from omnistream.domain.identity import route_key

if TYPE_CHECKING:
    from omnistream.runtime.app import Runtime

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(runtime: Runtime) -> None:
    app = runtime.app
    handler = runtime.channels.receipts

    @app.page("/webhooks/{provider}")
    class Webhooks(View):
        async def post(self, request: Any, provider: str) -> Any:
            body = await request.read()
            public = runtime.settings.public_base_url
            url = f"{public.rstrip('/')}{request.path_qs}" if public else str(request.url)
            try:
                events = await handler.handle_webhook(
                    provider, dict(request.headers), body, utcnow(), url
                )
            except ReceiptRejected as rejected:
                return self.json({"error": rejected.reason}, status=rejected.status)
            for event in events:
                await runtime.topics.customer_events.send(
                    key=route_key(event).encode(), value=event.to_json()
                )
            return self.json({"accepted": len(events)})
