"""POST /webhooks/{provider} on a live worker's public listener: a signed receipt becomes an
event on the customer's row; unsigned and replayed requests are refused with a clear status; the
internal listener does not route webhooks."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import orjson
import pytest
import redis.asyncio as aioredis

from omnistream.ports import SentMessage
from omnistream.providers.base import hmac_sha256_hex, sign_timestamped
from omnistream.providers.webhook import SIGNATURE_HEADER
from omnistream.storage.message_index import RedisMessageIndex

from .conftest import Stack, Worker, wait_until
from .test_identity import customer
from .test_walking_skeleton import envelope, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SECRET = "webhook-test-secret"


def post(
    worker: Worker, body: bytes, headers: dict[str, str], *, base_url: str | None = None
) -> tuple[int, dict[str, object]]:
    """POST to the public listener (or ``base_url``)."""
    request = urllib.request.Request(
        f"{base_url or worker.public_url}/webhooks/webhook", data=body, headers=headers,
        method="POST",
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()
        return exc.code, json.loads(text) if text.startswith(b"{") else {"text": text.decode()}


def test_signed_receipts_reach_the_profile_and_bad_ones_are_refused(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker(
        OMNISTREAM_PROVIDER_SMS="webhook",
        OMNISTREAM_WEBHOOK_SECRET=SECRET,
        OMNISTREAM_WEBHOOK_URL="http://127.0.0.1:9/unused",
    )
    asyncio.run(produce(stack, [envelope("e1", "signed_up", "c-1", traits={"first_name": "A"})]))
    wait_until(lambda: customer(worker, "c-1")[0] == 200, 30, "the customer row")

    body = orjson.dumps({"events": [{
        "id": "rcpt-1", "type": "opened", "send_id": "s-1", "customer_key": "c-1",
        "occurred_at": "2026-11-24T10:05:00+00:00",
    }]})  # fmt: skip
    signed = {SIGNATURE_HEADER: sign_timestamped(SECRET, body, int(time.time()))}

    internal = {**signed, "Authorization": f"Bearer {worker.token}"}
    assert post(worker, body, internal, base_url=worker.base_url)[0] == 404  # public only
    assert post(worker, body, {})[0] == 401  # unsigned
    forged = {SIGNATURE_HEADER: sign_timestamped("wrong", body, int(time.time()))}
    assert post(worker, body, forged)[0] == 401
    status, answer = post(worker, body, signed)
    assert (status, answer) == (200, {"accepted": 1})
    assert post(worker, body, signed)[0] == 409  # the same request again: a replay

    def opened() -> int:
        engagement = customer(worker, "c-1")[1]["profile"]["engagement"]
        return int(engagement.get("sms", {}).get("opened", 0))

    wait_until(lambda: opened() == 1, 30, "the open on the customer's profile")


VIBER_TOKEN = "viber-bot-token-test"


def test_viber_callbacks_resolve_through_the_message_index(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    """A Viber ``seen`` callback names only the message token: the worker finds the send in
    the Redis index (written here as the Viber send would) and the open reaches the profile;
    an unknown token is accepted with nothing produced; a forged signature is 401."""
    worker = start_worker(
        OMNISTREAM_PROVIDER_VIBER="viber",
        OMNISTREAM_VIBER_AUTH_TOKEN=VIBER_TOKEN,
        OMNISTREAM_VIBER_BASE_URL="http://127.0.0.1:9",
    )
    asyncio.run(produce(stack, [envelope("e1", "signed_up", "c-7", traits={"first_name": "V"})]))
    wait_until(lambda: customer(worker, "c-7")[0] == 200, 30, "the customer row")
    asyncio.run(_index(stack, "5741311803571721087", SentMessage("s-7", "c-7", "viber")))

    def callback(token: int) -> tuple[bytes, dict[str, str]]:
        body = orjson.dumps({"event": "seen", "timestamp": int(time.time() * 1000),
                             "message_token": token, "user_id": "vb-user-7"})  # fmt: skip
        return body, {"X-Viber-Content-Signature": hmac_sha256_hex(VIBER_TOKEN, body)}

    def viber_post(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        url = f"{worker.public_url}/webhooks/viber"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    body, headers = callback(5741311803571721087)
    assert viber_post(body, {"X-Viber-Content-Signature": "00" * 32})[0] == 401
    assert viber_post(body, headers) == (200, {"accepted": 1})
    assert viber_post(*callback(42)) == (200, {"accepted": 0})

    def opened() -> int:
        engagement = customer(worker, "c-7")[1]["profile"]["engagement"]
        return int(engagement.get("viber", {}).get("opened", 0))

    wait_until(lambda: opened() == 1, 30, "the Viber open on the customer's profile")


async def _index(stack: Stack, token: str, sent: SentMessage) -> None:
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        index = RedisMessageIndex(client, stack.redis_prefix)
        await index.remember("viber", token, "vb-user-7", sent, ttl_ms=600_000)
    finally:
        await client.aclose()
