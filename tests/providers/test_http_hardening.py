"""Provider HTTP calls: bounded response bodies, no redirects (issue 16).

A provider (or whoever answers at its address) must not be able to make a worker buffer an
unbounded body, nor to collect our credentials by redirecting a request to another origin.
"""

from __future__ import annotations

import gzip

import orjson
import pytest
from pydantic import SecretStr

from omnistream.ports import ProviderError
from omnistream.providers.base import MAX_RESPONSE_BYTES
from omnistream.providers.fcm import FcmProvider
from omnistream.providers.viber import ViberProvider
from omnistream.providers.webhook import WebhookProvider
from tests.providers.conftest import FakeServer, Reply
from tests.providers.test_http_providers import outgoing
from tests.unit.channels.factory import T0

TOO_BIG = b'{"id": "' + b"x" * (MAX_RESPONSE_BYTES + 10) + b'"}'


def webhook(server: FakeServer) -> WebhookProvider:
    return WebhookProvider(f"{server.url}/messages", SecretStr("whsec-test"), 5.0, clock=lambda: T0)


async def send_and_fail(provider: WebhookProvider | ViberProvider | FcmProvider) -> ProviderError:
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.send(outgoing("email", "a@example.com"))
    finally:
        await provider.aclose()
    return caught.value


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, raw=TOO_BIG),
        Reply(200, raw=TOO_BIG, chunked=True),  # no Content-Length to refuse up front
        Reply(500, raw=TOO_BIG, chunked=True),
        Reply(  # 4 KiB on the wire, 64 MiB inflated
            200,
            raw=gzip.compress(b" " * (64 * 1024 * 1024)),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        ),
    ],
    ids=["content-length", "chunked", "chunked-500", "gzip-bomb"],
)
async def test_a_response_over_the_cap_is_an_error(http_server: FakeServer, reply: Reply) -> None:
    http_server.answer(reply)
    error = await send_and_fail(webhook(http_server))
    assert (error.reason, error.transient) == ("response_too_large", False)


async def test_a_response_under_the_cap_is_read(http_server: FakeServer) -> None:
    body = orjson.dumps({"id": "wh-1", "pad": "x" * (MAX_RESPONSE_BYTES - 100)})
    http_server.answer(Reply(200, raw=body, chunked=True))
    provider = webhook(http_server)
    try:
        result = await provider.send(outgoing("email", "a@example.com"))
    finally:
        await provider.aclose()
    assert result.provider_message_id == "wh-1"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_not_followed_with_our_credentials(
    http_server: FakeServer, other_http_server: FakeServer, status: int
) -> None:
    target = f"{other_http_server.url}/collect"
    http_server.answer(Reply(status, headers={"Location": target}))
    viber = await send_and_fail(ViberProvider(http_server.url, SecretStr("vtok"), "Shop"))
    fcm = await send_and_fail(FcmProvider(http_server.url, "shop", SecretStr("ya29.token")))
    assert other_http_server.requests == []
    assert (viber.reason, viber.transient) == ("redirect_refused", False)
    assert (fcm.reason, fcm.transient) == ("redirect_refused", False)


async def test_a_same_origin_redirect_is_not_followed_either(http_server: FakeServer) -> None:
    http_server.answer(Reply(307, headers={"Location": f"{http_server.url}/elsewhere"}))
    error = await send_and_fail(webhook(http_server))
    assert error.reason == "redirect_refused"
    assert [request.path for request in http_server.requests] == ["/messages"]
