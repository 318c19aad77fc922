"""Answer a console request on the worker that owns a customer's row (table routing).

Faust's own ``table_route`` (used by ``GET /customers/{key}``) forwards GETs only and drops the
body, and the test send is a POST with a form. So the console routes itself, the same way: the
partition assignor names the worker whose canonical URL owns the key's partition of the
customers table; if that is not this worker, the request (method, query, body, and the
``Authorization`` / ``Cookie`` headers, so the owner checks the same credentials again) is sent
there once, marked with ``FORWARDED`` so it is never forwarded a second time (during a rebalance
two workers could otherwise bounce it), and the owner's answer is returned as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

import aiohttp
from aiohttp import web
from yarl import URL

from omnistream.runtime.fleet import same_worker

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["FORWARDED", "forwarded", "on_owner"]

FORWARDED: Final = "X-Omnistream-Forwarded"
FORWARD_TIMEOUT_S: Final = 15.0
_PASSED: Final = ("Authorization", "Cookie", "Content-Type", "Accept")
_KEPT: Final = ("Location", "Cache-Control")

Local = Callable[[], Awaitable[web.StreamResponse]]


def forwarded(request: web.Request) -> bool:
    """Did another worker forward this request here (so it must be answered here)?"""
    return request.headers.get(FORWARDED) == "1"


async def on_owner(
    runtime: Runtime, request: web.Request, key: str, local: Local
) -> web.StreamResponse:
    """``local()`` here if this worker owns ``key``'s row, else the owner's answer."""
    if forwarded(request):
        return await local()
    try:
        owner = runtime.app.router.key_store("customers", key.encode())
    except KeyError:  # no assignment yet (start or rebalance)
        raise web.HTTPServiceUnavailable(text="no worker owns this customer yet; retry") from None
    if same_worker(runtime, owner):
        return await local()
    return await _forward(request, URL(str(owner)))


async def _forward(request: web.Request, owner: URL) -> web.Response:
    headers = {name: request.headers[name] for name in _PASSED if name in request.headers}
    headers[FORWARDED] = "1"
    body = await request.read()
    target = owner.with_path(request.path).with_query(request.query)
    timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.request(
            request.method, target, headers=headers, data=body or None, allow_redirects=False
        ) as answer,
    ):
        return web.Response(
            body=await answer.read(),
            status=answer.status,
            content_type=answer.content_type,
            charset=answer.charset,
            headers={name: answer.headers[name] for name in _KEPT if name in answer.headers},
        )
